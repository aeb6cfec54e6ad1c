"""`amqp-dispatcher`: the original command, on top of the compiler.

`amqp-dispatcher --validate --config config.yml` runs every check of `dispatcher-build` and
writes nothing. `amqp-dispatcher --config config.yml` compiles the config with the same checks,
then replaces this process with the generated service, exactly as `python -m service` would
run it (so that monkey-patching, when configured, still comes first).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from amqp_dispatcher.runtime.version import VERSION

from . import output, report
from .cli import UsageError, compile_file

_PACKAGE = "_amqp_dispatcher_service"
# Exit statuses of the runtime's table: 2 is a config or import error.
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="amqp-dispatcher",
        description="Run the consumers of an amqp-dispatcher config (compiled in memory), or --validate it.",
    )
    parser.add_argument("--config", default="config.yml", help="the YAML configuration (default: config.yml)")
    parser.add_argument("--validate", action="store_true", help="check the config and exit: 0 valid, 1 invalid")
    parser.add_argument("--path", action="append", default=[], metavar="DIR", help="also import modules from DIR")
    parser.add_argument("--version", action="version", version=f"amqp-dispatcher {VERSION}")
    arguments = parser.parse_args(argv)
    try:
        result = compile_file(arguments.config, arguments.path, 60.0, strict=False, package=_PACKAGE)
    except UsageError as exc:
        sys.stderr.write(f"amqp-dispatcher: error: {exc}\n")
        return 2
    if result.diagnostics:
        sys.stderr.write(report.text(result.diagnostics, result.config_name, result.text) + "\n")
    if result.files is None:
        sys.stderr.write(f"{report.summary(result.diagnostics, result.config_name)}\n")
        return 1 if arguments.validate else EXIT_CONFIG
    if arguments.validate:
        sys.stdout.write(f"{result.config_name} is valid\n")
        return 0
    _exec_service(result.files, arguments.path)


def _exec_service(files: dict[str, str], paths: Sequence[str]) -> NoReturn:
    """Write the package where restarts reuse it, then become `python -m` of it."""
    digest = hashlib.sha256("".join(files[name] for name in sorted(files)).encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"amqp-dispatcher-{os.getuid()}" / digest
    output.write(files, root / _PACKAGE)
    bootstrap = (
        "import runpy, sys\n"
        "sys.path[1:1] = sys.argv[1:]\n"
        "del sys.argv[1:]\n"
        f"runpy.run_module({_PACKAGE!r}, run_name='__main__', alter_sys=True)\n"
    )
    extra = [str(root), *(os.path.abspath(path) for path in paths)]
    os.execv(sys.executable, [sys.executable, "-c", bootstrap, *extra])


if __name__ == "__main__":
    main()
