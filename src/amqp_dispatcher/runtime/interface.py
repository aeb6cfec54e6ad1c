"""The interface between generated packages and the runtime, and the guard between them.

Owns INTERFACE: the number of the shape that generated code relies on (the names it imports
from the runtime and the fields of the spec classes it builds). A generated package's first
runtime import is `from amqp_dispatcher.runtime.interface import INTERFACE_<n>`: a runtime
that runs interface n has that name, and any other refuses the package there, at import, in
one line that names both sides and the fix, before a missing name or an unknown field could
fail with a traceback. Under `python -m <package>` that line goes to stderr and the process
exits 2 (a configuration error); an import from other code raises IncompatiblePackage.

This module's name and the `INTERFACE_<n>` convention are a promise to every package ever
generated: keep both. Bump INTERFACE whenever generated code built by the previous version
would no longer run here, and list in SUPPORTED the older numbers this runtime still runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from .errors import DispatcherError, ExitStatus
from .logs import safe
from .version import VERSION

INTERFACE = 2
SUPPORTED = frozenset({1, INTERFACE})
INTERFACE_1 = 1  # what packages generated for interface 1 import
INTERFACE_2 = 2  # interface 2: Service(processes=...)

_NAME = re.compile(r"INTERFACE_([0-9]+)")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,40}")  # what a manifest may name, shown in a command line


class IncompatiblePackage(DispatcherError, ImportError):
    """A generated package was built for a runtime interface this runtime does not run."""


def _in_check_mode() -> bool:
    """Whether `python -m <package> check` (or `plan`) is importing the package (runpy sets argv[0]
    to -m): a configured module that cannot be imported is then a finding, not a traceback."""
    return sys.argv[:1] == ["-m"] and sys.argv[1:2] in (["check"], ["plan"])


def _import_failed(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """In check mode, a configured module that cannot be imported is a finding, not a traceback."""
    print(f"{sys.argv[1]}: the package cannot be imported here: {kind.__name__}: {safe(str(error))}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(ExitStatus.CONFIG)  # the interpreter would exit 1 after an excepthook


def leave_check_mode() -> None:
    """The package imported: failures from here on are the check's own, with their tracebacks."""
    if sys.excepthook is _import_failed:
        sys.excepthook = sys.__excepthook__


if _in_check_mode():  # runs once, as the package's first runtime import is being imported
    sys.excepthook = _import_failed


def __getattr__(name: str) -> int:
    """A package generated for an interface this runtime does not run: refuse it, in one line."""
    wanted = _NAME.fullmatch(name)
    if wanted is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The caller is the package's `from ... import INTERFACE_<n>`: its manifest names the generator.
    importer = sys._getframe(1).f_globals.get("__file__")
    refuse(int(wanted[1]), _generator_beside(importer))


def refuse(wanted: int, generator: str | None = None) -> NoReturn:
    message = explain(wanted, generator)
    if sys.argv[:1] == ["-m"]:  # python -m <package> is importing it: one line, exit 2
        print(f"{sys.argv[1] if _in_check_mode() else 'amqp-dispatcher'}: {message}", file=sys.stderr)
        raise SystemExit(ExitStatus.CONFIG)
    raise IncompatiblePackage(message)


def explain(wanted: int, generator: str | None = None) -> str:
    runs = ", ".join(str(number) for number in sorted(SUPPORTED))
    by = f" by dispatcher-build {generator}" if generator else ""
    mismatch = (
        f"this package was generated{by} for runtime interface {wanted}, and the installed runtime "
        f"(amqp-dispatcher {VERSION}) runs interface {runs}"
    )
    rebuild = "rebuild the package with this version's dispatcher-build (dispatcher-build CONFIG -o DIR)"
    if wanted > max(SUPPORTED):
        upgrade = (
            f"pip install 'amqp-dispatcher=={generator}'" if generator else "pip install --upgrade amqp-dispatcher"
        )
        return f"{mismatch}: upgrade the runtime ({upgrade}), or {rebuild}"
    if generator:
        rebuild += f", or run it with the runtime it was built for (pip install 'amqp-dispatcher=={generator}')"
    return f"{mismatch}: {rebuild}"


def _generator_beside(module_file: object) -> str | None:
    """The dispatcher-build version in the manifest next to a generated module, if it can be read."""
    return generator_in(Path(module_file).parent) if isinstance(module_file, str) else None


def generator_in(package_folder: Path) -> str | None:
    """The dispatcher-build version a package's manifest.json names, if it can be read."""
    try:
        manifest = json.loads((package_folder / "manifest.json").read_text(encoding="utf-8"))
        version = manifest["generator"]["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) and _VERSION.fullmatch(version) else None
