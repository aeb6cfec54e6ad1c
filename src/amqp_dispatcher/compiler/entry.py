"""The console scripts `dispatcher-build` and `amqp-dispatcher`, and the install they need.

Owns one check: both commands compile a config, so they need the compiler's libraries (the
`build` extra), which a production install leaves out. Without them, each command says in one
line which install it needs, instead of failing with a traceback on its first import. Imports
only the standard library and the runtime's exit statuses (which need nothing else) until that
check has passed.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import NoReturn

from amqp_dispatcher.runtime.errors import ExitStatus

# The compiler's own dependencies: the `build` extra of pyproject.toml.
BUILD_LIBRARIES = ("jinja2", "jsonschema", "yaml")


def missing_build_libraries() -> list[str]:
    return [name for name in BUILD_LIBRARIES if importlib.util.find_spec(name) is None]


def build_main() -> NoReturn:
    """`dispatcher-build`."""
    _require_compiler("dispatcher-build")
    from .cli import main

    main()


def legacy_main() -> NoReturn:
    """`amqp-dispatcher`, the original command."""
    _require_compiler("amqp-dispatcher")
    from .legacy_cli import main

    main()


def _require_compiler(command: str) -> None:
    missing = missing_build_libraries()
    if missing:
        sys.stderr.write(
            f"{command}: this command compiles the config, and this install has only the runtime "
            f"({', '.join(missing)} missing): pip install 'amqp-dispatcher[build]'; in production, run the "
            "package that dispatcher-build wrote instead: python -m service\n"
        )
        sys.exit(ExitStatus.CONFIG)  # the environment is wrong
