"""Rendering: the model to the text of every file of the service package.

The only importer of jinja2. Prepares rows (field name, literal source) for the templates,
names the user imports (aliasing clashes), writes manifest.json, and proves each module
parses and compiles. Output is a pure function of the model, the config file name, the
imported packages and the generator version: no time, no paths, no environment.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import platform
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jinja2

from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Queue, Service
from amqp_dispatcher.runtime.version import VERSION

from . import pysource
from .model import ServiceModel
from .refs import ImportRef

MANIFEST = "manifest.json"
_LINE_LENGTH = 88  # ruff format's default, which the generated code follows
_NESTED = ("exchanges", "queues", "consumers", "bindings")


class RenderError(Exception):
    """The generator produced code that does not compile: a bug in dispatcher-build."""


def render(model: ServiceModel, *, config_name: str, package: str, packages: Mapping[str, str]) -> dict[str, str]:
    """File name -> text, for every file of the package."""
    names = _import_names(model)
    context = {
        "version": VERSION,
        "config_name": _printable(config_name),
        "config_sha256": model.config_sha256,
        "monkey_patch": model.monkey_patch,
        "package": package,
        "imports": _import_lines(model, names),
        "service_fields": _service_row(model, names),
        "exchanges": [_row(Exchange, exchange, depth=3) for exchange in model.exchanges],
        "queues": [_queue_rows(queue) for queue in model.queues],
        "consumers": [_consumer_row(consumer, names) for consumer in model.consumers],
    }
    files = {
        "__init__.py": _environment().get_template("__init__.py.j2").render(context),
        "__main__.py": _environment().get_template("__main__.py.j2").render(context),
    }
    for name, text in files.items():
        _prove_compiles(name, text)
    files[MANIFEST] = _manifest(model, config_name, files, packages)
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


def _service_row(model: ServiceModel, names: Mapping[ImportRef, str]) -> list[tuple[str, str]]:
    row = []
    for field in dataclasses.fields(Service):
        if field.name in _NESTED:
            continue
        value = getattr(model, field.name)
        row.append((field.name, names[value] if isinstance(value, ImportRef) else pysource.literal(value, 1)))
    return row


def _row(spec_class: type, spec: Any, *, depth: int) -> list[tuple[str, str]]:
    """(field, literal) for every field of a runtime spec class, nested collections aside."""
    return [
        (field.name, pysource.literal(_plain(getattr(spec, field.name)), depth))
        for field in dataclasses.fields(spec_class)
        if field.name not in _NESTED
    ]


def _queue_rows(queue: Queue) -> dict[str, Any]:
    return {
        "fields": _row(Queue, queue, depth=3),
        "bindings": [_row(Binding, binding, depth=5) for binding in queue.bindings],
    }


def _consumer_row(consumer: Any, names: Mapping[ImportRef, str]) -> dict[str, Any]:
    fields = []
    for field in dataclasses.fields(ConsumerEntry):
        value = getattr(consumer, field.name)
        fields.append((field.name, names[value] if isinstance(value, ImportRef) else pysource.literal(value, 3)))
    return {"line": consumer.line, "fields": fields}


def _plain(value: Any) -> Any:
    """Read-only mappings back to dicts, so that they are written as dict literals."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _runtime_names(model: ServiceModel) -> list[str]:
    names = {"Service", "ConsumerEntry"}
    if model.exchanges:
        names.add("Exchange")
    if model.queues:
        names.add("Queue")
    if any(queue.bindings for queue in model.queues):
        names.add("Binding")
    if any(consumer.retry is not None for consumer in model.consumers):
        names.add("RetryPolicy")
    return sorted(names)


def _import_names(model: ServiceModel) -> dict[ImportRef, str]:
    """The name each user reference is bound to: the attribute itself, unless it clashes."""
    handler = {model.startup_handler} if model.startup_handler else set()
    refs = sorted({consumer.consumer for consumer in model.consumers} | handler)
    taken = set(_runtime_names(model)) | {"SERVICE", "monkey"}
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


def _import_lines(model: ServiceModel, names: Mapping[ImportRef, str]) -> list[str]:
    lines = [_import_line("amqp_dispatcher.runtime", _runtime_names(model))]
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


def _manifest(model: ServiceModel, config_name: str, files: Mapping[str, str], packages: Mapping[str, str]) -> str:
    document = {
        "format_version": 1,
        "generator": {"name": "dispatcher-build", "version": VERSION},
        "config": {"file": config_name, "sha256": model.config_sha256},
        "files": {name: _sha256(text) for name, text in sorted(files.items())},
        "build_environment": {
            "python": ".".join(platform.python_version_tuple()[:2]),
            "packages": dict(sorted(packages.items())),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
