"""Rendering: the model to the text of every file of the service package.

The only importer of jinja2. Writes the `SERVICE = Service(...)` expression with pysource.py
(every field of the runtime's spec classes, a `# config.yml:LINE` comment above each
consumer), names the user imports (aliasing clashes), imports from the runtime exactly the
classes the expression calls, writes manifest.json, and proves each module parses and
compiles. The templates only place that text. Output is a pure function of the service, the
config file name, the imported packages and the generator version: no time, no paths, no
environment.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
from collections import Counter
from collections.abc import Mapping, Set

import jinja2

from amqp_dispatcher.runtime.interface import INTERFACE
from amqp_dispatcher.runtime.spec import Service
from amqp_dispatcher.runtime.version import VERSION

from . import pysource
from .model import Model
from .refs import ImportRef

MANIFEST = "manifest.json"
_LINE_LENGTH = 88  # ruff format's default, which the generated code follows
# Names the generated module binds itself, which no import may take.
_OWN_NAMES = frozenset({"SERVICE", "monkey"})


# The first runtime import: a runtime that does not run this interface refuses the package here,
# in one line, before any other name is looked up (runtime/interface.py).
_GUARD = (
    "# The runtime refuses, in one line, a package generated for an interface it does not run.",
    f"from amqp_dispatcher.runtime.interface import INTERFACE_{INTERFACE}  # noqa: F401",
)


class RenderError(Exception):
    """The generator produced code that does not compile: a bug in dispatcher-build."""


def render(model: Model, *, config_name: str, package: str, packages: Mapping[str, str]) -> dict[str, str]:
    """File name -> text, for every file of the package; call only with a whole service."""
    service = model.service
    assert service is not None, "rendered a config with errors"
    runtime_names = sorted(pysource.class_names(service))
    names = _import_names(service, taken=_OWN_NAMES | set(runtime_names))
    # By identity: two consumers can be equal and still be written on different lines.
    comments = {id(entry.spec): f"{_printable(config_name)}:{entry.line}" for entry in model.consumers}
    context = {
        "version": VERSION,
        "config_name": _printable(config_name),
        "config_sha256": service.config_sha256,
        "monkey_patch": service.monkey_patch,
        "package": package,
        "imports": _import_lines(runtime_names, names),
        "service": pysource.literal(service, names=names, comments=comments),
    }
    files = {
        "__init__.py": _environment().get_template("__init__.py.j2").render(context),
        "__main__.py": _environment().get_template("__main__.py.j2").render(context),
    }
    for name, text in files.items():
        _prove_compiles(name, text)
    files[MANIFEST] = _manifest(service.config_sha256, config_name, files, packages)
    return files


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("amqp_dispatcher.templates", ""),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _import_names(service: Service[ImportRef, ImportRef], *, taken: Set[str]) -> dict[ImportRef, str]:
    """The name each user reference is bound to: the attribute itself, unless it clashes."""
    handler = {service.startup_handler} if service.startup_handler else set()
    refs = sorted({consumer.consumer for consumer in service.consumers} | handler)
    taken = set(taken)
    uses = Counter(ref.attr for ref in refs)
    names: dict[ImportRef, str] = {}
    for ref in refs:
        if uses[ref.attr] == 1 and ref.attr not in taken:
            names[ref] = ref.attr
    taken |= set(names.values())
    for ref in refs:
        if ref in names:
            continue
        alias = f"{ref.module.replace('.', '_')}_{ref.attr}"
        while alias in taken:
            alias += "_"
        names[ref] = alias
        taken.add(alias)
    return names


def _import_lines(runtime_names: list[str], names: Mapping[ImportRef, str]) -> list[str]:
    lines = [*_GUARD, _import_line("amqp_dispatcher.runtime", runtime_names)]
    by_module: dict[str, list[str]] = {}
    for ref, name in sorted(names.items()):
        by_module.setdefault(ref.module, []).append(ref.attr if name == ref.attr else f"{ref.attr} as {name}")
    user = [_import_line(module, imported) for module, imported in sorted(by_module.items())]
    return [*lines, "", *user]


def _import_line(module: str, names: list[str]) -> str:
    """`from m import a, b`, or the parenthesized form ruff format uses past the line length."""
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= _LINE_LENGTH:
        return line
    body = "".join(f"{pysource.INDENT}{name},\n" for name in names)
    return f"from {module} import (\n{body})"


def _printable(text: str) -> str:
    """The config file name as it may appear in a comment: one line, nothing unprintable."""
    return text if text.isprintable() else pysource.string(text)


def _prove_compiles(name: str, text: str) -> None:
    try:
        compile(ast.parse(text, filename=name), name, "exec")
    except SyntaxError as exc:  # pragma: no cover - a generator bug, caught by the tests
        raise RenderError(f"generated {name} does not compile: {exc}") from exc


def _manifest(config_sha256: str, config_name: str, files: Mapping[str, str], packages: Mapping[str, str]) -> str:
    document = {
        "format_version": 1,
        "generator": {"name": "dispatcher-build", "version": VERSION, "runtime_interface": INTERFACE},
        "config": {"file": config_name, "sha256": config_sha256},
        "files": {name: _sha256(text) for name, text in sorted(files.items())},
        "build_environment": {
            "python": ".".join(platform.python_version_tuple()[:2]),
            "packages": dict(sorted(packages.items())),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
