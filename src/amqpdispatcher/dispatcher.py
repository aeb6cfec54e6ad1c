"""`python -m amqpdispatcher.dispatcher`: the entry point of amqp-dispatcher 0.x and 1.x."""

from __future__ import annotations

from typing import NoReturn


def main() -> NoReturn:
    from amqp_dispatcher.compiler.entry import legacy_main

    legacy_main()


if __name__ == "__main__":
    main()
