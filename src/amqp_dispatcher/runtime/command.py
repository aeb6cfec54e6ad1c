"""The generated package's command line: `python -m <package>` runs it, `... check` checks it.

Owns the arguments a generated `__main__.py` passes on, and nothing else: running is the
runner's, checking is check.py's. Usage errors exit 2 with one line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ExitStatus
from .interface import generator_in
from .spec import LiveService

USAGE = (
    "usage: python -m {package} [check]\n"
    "  (no argument)  run the service\n"
    "  check          verify, without connecting, that this environment can run it"
)


def main(service: LiveService, arguments: Sequence[str], *, package: str) -> int:
    """Run or check the package whose SERVICE this is; returns the exit status."""
    if not arguments:
        from .runner import run_service  # only running loads gevent and pika

        return run_service(service, generator=generator_in(_folder(package)), worker_command=_this_command(package))
    if list(arguments) == ["check"]:
        from . import interface
        from .check import check

        interface.leave_check_mode()
        return check(service, _folder(package))
    if arguments[0] in ("-h", "--help"):
        print(USAGE.format(package=package))
        return ExitStatus.OK
    print(f"{USAGE.format(package=package)}\nunknown arguments: {' '.join(arguments)}", file=sys.stderr)
    return ExitStatus.CONFIG


def _this_command(package: str) -> list[str] | None:
    """The command that started this process, to start each worker of several with; None when the
    package's __main__ is not what runs (main() called from other code), so there is none to repeat.

    `python -m <package>`, and `amqp-dispatcher --config`, which compiles the config and runs the
    package it writes, both run the package's __main__; repeating the interpreter's original
    arguments (its options included) starts the same thing again."""
    running = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(running, "name", None) != f"{package}.__main__" or len(sys.orig_argv) < 2:
        return None
    return [sys.executable, *sys.orig_argv[1:]]


def _folder(package: str) -> Path:
    module = sys.modules[package]
    return Path(module.__file__ or ".").parent
