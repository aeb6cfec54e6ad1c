"""The stop signals: SIGTERM and SIGINT, handled on the gevent hub while a block of code runs.

Owns which signals stop a service and how their handlers are installed and removed, for the
runner of one process and for the parent of several alike; what a first or a second signal
means is theirs.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

import gevent

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """`handler(signal number)` runs on the hub for each stop signal until the block ends."""
    handlers = [gevent.signal_handler(number, handler, number) for number in STOP_SIGNALS]
    try:
        yield
    finally:
        for installed in handlers:
            installed.cancel()
