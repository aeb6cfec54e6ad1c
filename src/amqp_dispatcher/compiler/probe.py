"""The import probe: imports the configured modules in a child process and checks the contract.

Run by imports.py as `python -m amqp_dispatcher.compiler.probe FOLDER`: it reads the request
from FOLDER/request.json and writes JSON lines to FOLDER/results.jsonl as it goes, so that a
module that hangs or kills the process can still be named. Owns the consumer contract checks,
which need the live objects: a class, creatable without arguments, with `consume(amqp, msg)`
and `shutdown(exception)`; a startup handler callable with no arguments. A name that is not
found comes with the names that are (a finding's `guess`), and imports.py says which is close.
Before any user code runs it caps its own memory (the request's `memory_mb`), so that a runaway
import ends in a MemoryError. Imports only the standard library.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import inspect
import json
import os
import pkgutil
import resource
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

Finding = dict[str, Any]
_OWN_FILE = os.path.abspath(__file__)
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep
_CONTRACT = "a consumer needs consume(self, amqp, msg) and shutdown(self, exception=None)"


_ROOTS: list[str] = []
# Modules the interpreter loaded before any user code (site hooks and the like).
_BASELINE = frozenset(sys.modules)


def main() -> None:
    folder = sys.argv[1]
    with open(os.path.join(folder, "request.json"), encoding="utf-8") as file:
        request = json.load(file)
    with open(os.path.join(folder, "results.jsonl"), "w", encoding="utf-8") as out:
        probe = _Probe(request["roots"], out, _MemoryLimit(request.get("memory_mb", 0)))
        findings = {f"{t['role']} {t['ref']}": probe.check(t["ref"], t["role"]) for t in request["targets"]}
        probe.emit(event="done", findings=findings, packages=_imported_packages())


class _MemoryLimit:
    """A soft RLIMIT_DATA on the probe while user modules import; 0 megabytes means none.

    RLIMIT_DATA rather than RLIMIT_AS: it counts memory written to (heap and private mappings),
    not address space merely reserved, which some libraries reserve by the gigabyte. Only the
    soft limit is set, so that after a MemoryError the probe can lift it to report the failure.
    """

    def __init__(self, megabytes: int) -> None:
        self.megabytes = megabytes
        self._hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        self.apply()

    def apply(self) -> None:
        if self.megabytes > 0:
            limit = self.megabytes * 1024 * 1024
            if self._hard != resource.RLIM_INFINITY:
                limit = min(limit, self._hard)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, self._hard))

    def lift(self) -> None:
        if self.megabytes > 0:
            resource.setrlimit(resource.RLIMIT_DATA, (self._hard, self._hard))


class _Probe:
    def __init__(self, roots: list[str], out: IO[str], memory: _MemoryLimit) -> None:
        self.roots = roots
        self.out = out
        self.memory = memory
        self.modules: dict[str, Any] = {}
        self.failures: dict[str, Finding] = {}
        for root in reversed(roots):
            sys.path.insert(0, root)
        _ROOTS[:] = roots

    def emit(self, **event: Any) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def check(self, ref: str, role: str) -> Finding:
        module_name, _, attr = ref.partition(":")
        module = self._import(module_name)
        if module is None:
            return self.failures[module_name]
        if not hasattr(module, attr):
            return _attribute_missing(module, module_name, attr)
        target = getattr(module, attr)
        if role == "consumer":
            return _check_consumer(_short(ref, 120), target)
        return _check_startup_handler(_short(ref, 120), target)

    def _import(self, name: str) -> Any:
        if name in self.modules:
            return self.modules[name]
        if name in self.failures:
            return None
        self.emit(event="importing", module=name)
        try:
            module = importlib.import_module(name)
        except MemoryError as exc:
            self.memory.lift()  # formatting the traceback needs memory too
            self.failures[name] = self._import_failure(name, exc)
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
            self.failures[name] = self._import_failure(name, exc)
        else:
            self.modules[name] = module
            return module
        # The traceback held the failed module's frames, and they what it allocated; its functions
        # and namespace form cycles, so collect them before the next module gets the limit again.
        gc.collect()
        self.memory.apply()
        return None

    def _import_failure(self, name: str, exc: BaseException) -> Finding:
        if isinstance(exc, ModuleNotFoundError) and exc.name and _is_self_or_parent(exc.name, name):
            return self._not_found(name, exc.name)
        shown = _short(name)
        if isinstance(exc, SyntaxError):
            where = f"{_short(_relative(exc.filename or '?'), 200)}, line {exc.lineno}"
            message = f"importing {shown} failed: a syntax error in {where}: {_short(str(exc.msg), 200)}"
            hint = "fix the syntax error; the build imports every module the config names"
        elif isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.partition(".")[0] == "amqpdispatcher":
            message = f"importing {shown} raised {type(exc).__name__}: {_first_line(exc)}"
            hint = (
                f"{_short(exc.name)} was a module of amqp-dispatcher 1.x, which this version replaces: remove the "
                "import (consumers need nothing from the dispatcher's package); docs/migrating.md lists the edits"
            )
        elif isinstance(exc, ModuleNotFoundError) and exc.name:
            message = f"importing {shown} raised {type(exc).__name__}: {_first_line(exc)}"
            hint = (
                f"install {_short(exc.name.partition('.')[0])} where dispatcher-build runs, as it will be in production"
            )
        elif isinstance(exc, MemoryError) and self.memory.megabytes > 0:
            message = f"importing {shown} raised MemoryError: {_first_line(exc)}"
            hint = (
                f"importing it needed more than the {self.memory.megabytes:,} MB the build allows; if the module "
                "really needs that much, raise the limit with --import-memory MB (0: none), or skip the work "
                "when DISPATCHER_BUILD=1 is set"
            )
        else:
            message = f"importing {shown} raised {type(exc).__name__}: {_first_line(exc)}"
            hint = (
                "fix the error the traceback shows; a module that needs a database or the network at import "
                "time can skip that work when DISPATCHER_BUILD=1 is set"
            )
        return _finding("E202", message, hints=[hint], notes=[_user_traceback(exc)])

    def _not_found(self, name: str, missing: str) -> Finding:
        parent, _, leaf = missing.rpartition(".")
        hint = (
            "modules are imported from the current directory and each --path directory; "
            "run dispatcher-build from the project root, or add --path DIR"
        )
        message = f"cannot import {_short(name)}: there is no module named {_short(missing)}"
        guess = _guess(leaf, self._submodules(parent), "module", parent)
        return _finding("E201", message, hints=[hint], guess=guess)

    def _submodules(self, parent: str) -> list[str]:
        if not parent:
            return [info.name for info in pkgutil.iter_modules(self.roots)]
        package = self.modules.get(parent) or sys.modules.get(parent)
        paths = getattr(package, "__path__", None)
        return [info.name for info in pkgutil.iter_modules(paths)] if paths else []


def _check_consumer(ref: str, target: Any) -> Finding:
    if not inspect.isclass(target):
        return _finding(
            "E204",
            f"{ref} is {_kind(target)}, not a class",
            hints=["name the consumer class: the dispatcher creates its instances itself"],
        )
    if inspect.isabstract(target):
        missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
        return _finding(
            "E205",
            f"{ref} is abstract (it does not implement {missing}), so it cannot be created",
            hints=["name a concrete subclass, or implement the abstract methods"],
        )
    required = _required_parameters(target)
    if required:
        names = ", ".join(required)
        return _finding(
            "E205",
            f"{ref} cannot be created without arguments: __init__ requires {names}",
            hints=["give each parameter a default, or build what the consumer needs inside __init__"],
        )
    return (
        _check_method(ref, target, "consume", ("amqp", "msg"))
        or _check_method(ref, target, "shutdown", ("exception",))
        or {"ok": True}
    )


def _check_method(ref: str, cls: type, name: str, arguments: tuple[str, ...]) -> Finding | None:
    raw = inspect.getattr_static(cls, name, None)
    if raw is None:
        return _finding("E206", f"{ref} has no {name} method", hints=[_CONTRACT])
    method = getattr(cls, name)
    if not callable(method):
        return _finding("E206", f"{ref}.{name} is {_kind(method)}, not a method", hints=[_CONTRACT])
    call = f"{name}({', '.join(arguments)})"
    shown = f"{ref}.{name}{_signature_text(method)}"
    if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
        return _finding(
            "E207",
            f"{shown} is async, but the runtime calls {name} as a plain function under gevent",
            hints=[
                "remove async and await: gevent makes blocking calls cooperative "
                "(amqp-dispatcher 1.x consumers were async)"
            ],
        )
    if inspect.isgeneratorfunction(method):
        return _finding("E207", f"{shown} is a generator function, so calling it would run none of its body")
    leading: tuple[object, ...] = (object(),) if inspect.isfunction(raw) else ()
    if not _accepts(method, *leading, *(object() for _ in arguments)):
        example = "def consume(self, amqp, msg)" if name == "consume" else "def shutdown(self, exception=None)"
        return _finding("E207", f"{shown} cannot be called as {call}", hints=[f"write {example}"])
    return None


def _check_startup_handler(ref: str, target: Any) -> Finding:
    if not callable(target):
        return _finding(
            "E204", f"{ref} is {_kind(target)}, not callable", hints=["name a function that takes no arguments"]
        )
    shown = f"{ref}{_signature_text(target)}"
    if inspect.iscoroutinefunction(target):
        return _finding(
            "E207", f"{shown} is async; the startup handler is called as a plain function", hints=["remove async"]
        )
    if not _accepts(target):
        return _finding("E207", f"{shown} cannot be called without arguments", hints=["give each parameter a default"])
    return {"ok": True}


def _accepts(function: Callable[..., Any], *arguments: object) -> bool:
    try:
        inspect.signature(function).bind(*arguments)
    except TypeError:
        return False
    except ValueError:  # no signature available (some builtins): trust it
        return True
    return True


def _required_parameters(cls: type) -> list[str]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    return [
        parameter.name
        for parameter in signature.parameters.values()
        if parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def _attribute_missing(module: Any, module_name: str, attr: str) -> Finding:
    names = [name for name in dir(module) if not name.startswith("__")]
    guess = _guess(attr, names, "attribute", module_name)
    return _finding("E203", f"module {_short(module_name)} has no attribute {_short(attr)}", guess=guess)


def _signature_text(function: Any) -> str:
    try:
        return _short(str(inspect.signature(function)), 200)
    except (TypeError, ValueError):
        return "(...)"


def _kind(value: Any) -> str:
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return "a function"
    if inspect.ismodule(value):
        return "a module"
    return f"an instance of {type(value).__name__}" if not isinstance(value, type) else "a class"


def _user_traceback(exc: BaseException) -> str:
    """The traceback as Python prints it, without the frames of importlib or of this probe."""
    chain: list[tuple[BaseException, str | None]] = [(exc, None)]
    seen, current = {id(exc)}, exc
    while True:
        older: BaseException
        link: str
        if current.__cause__ is not None:
            older, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            older, link = current.__context__, _CONTEXT
        else:
            break
        if id(older) in seen:
            break
        seen.add(id(older))
        chain.append((older, link))
        current = older
    sections: list[str] = []
    for exception, relation in reversed(chain):
        sections.append(_format_one(exception))
        if relation:
            sections.append(relation)
    return "\n\n".join(sections)


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _format_one(exc: BaseException) -> str:
    """One exception: its user frames (without column carets, which vary by Python version)."""
    lines: list[str] = []
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not _is_machinery(frame.filename)]
    # Trimmed to the user's code: the files under the import roots, when any are involved.
    own = [frame for frame in frames if _is_under_roots(frame.filename)]
    frames = own or frames
    if isinstance(exc, SyntaxError) and exc.filename:
        exc.filename = _relative(exc.filename)
    if frames:
        lines.append("Traceback (most recent call last):")
    for frame in frames:
        lines.append(f'  File "{_relative(frame.filename)}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    lines.extend(line.rstrip("\n") for line in traceback.format_exception_only(type(exc), exc))
    return "\n".join(lines)


def _is_machinery(filename: str) -> bool:
    """Frames of the import system and of this probe, which tell the user nothing."""
    if filename.startswith("<frozen "):
        return True
    absolute = os.path.abspath(filename)
    return absolute == _OWN_FILE or absolute.startswith(_IMPORTLIB_DIR)


def _is_under_roots(filename: str) -> bool:
    absolute = os.path.abspath(filename)
    return any(absolute.startswith(root.rstrip(os.sep) + os.sep) for root in _ROOTS)


def _relative(filename: str) -> str:
    """User files relative to the working directory, as the user names them; others as they are."""
    return os.path.relpath(os.path.abspath(filename), os.getcwd()) if _is_under_roots(filename) else filename


def _imported_packages() -> dict[str, str]:
    """Versions of the installed distributions the user's modules brought in."""
    top_level = {name.partition(".")[0] for name in set(sys.modules) - _BASELINE}
    top_level -= set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {"amqp_dispatcher"}
    mapping = importlib.metadata.packages_distributions()
    versions: dict[str, str] = {}
    for name in top_level:
        for distribution in mapping.get(name, ()):
            try:
                versions[distribution] = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:  # pragma: no cover - broken install
                continue
    return dict(sorted(versions.items()))


def _is_self_or_parent(missing: str, wanted: str) -> bool:
    return wanted == missing or wanted.startswith(missing + ".")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _short(text.splitlines()[0], 200) if text else "(no message)"


def _short(text: str, limit: int = 60) -> str:
    """As diagnostics.shorten, which this process cannot import: what a message may echo of a
    name or an exception, at most `limit` characters, with unprintable characters escaped."""
    escaped = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[: limit + 1])
    if len(text) <= limit and len(escaped) <= limit + 20:
        return escaped
    return f"{escaped[:limit]}... ({len(text):,} characters)"


def _finding(
    code: str,
    message: str,
    *,
    hints: list[str] | None = None,
    notes: list[str] | None = None,
    guess: dict[str, Any] | None = None,
) -> Finding:
    finding = {"code": code, "message": message, "hints": hints or [], "notes": notes or []}
    return {**finding, "guess": guess} if guess else finding


def _guess(word: str, among: list[str], kind: str, within: str) -> dict[str, Any]:
    """A name not found, and the names found instead: a module's or package's (`within`)
    submodules (kind "module") or attributes (kind "attribute")."""
    return {"word": word, "among": among, "kind": kind, "within": within}


if __name__ == "__main__":
    main()
