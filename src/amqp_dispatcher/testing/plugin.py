"""The pytest plugin of the test kit: the `dispatcher` fixture.

Registered through the `pytest11` entry point, so installing amqp-dispatcher makes the fixture
available. pytest is imported only when pytest loads this module, and the runtime (gevent,
pika) only when a test uses the fixture, so that a test suite's own gevent set-up comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..runtime.spec import LiveService
    from .harness import Harness


@pytest.fixture
def dispatcher() -> Iterator[Callable[..., Harness]]:
    """Start a service on an in-memory broker: `dispatcher("service")`, or its module or SERVICE,
    with Harness's options. Each one started is stopped after the test, which fails if the
    service did not stop cleanly."""
    from .harness import Harness

    started: list[Harness] = []

    def start(service: LiveService | ModuleType | str, **options: Any) -> Harness:
        harness = Harness(service, **options).start()
        started.append(harness)
        return harness

    yield start
    problems = []
    for harness in started:  # each one stopped, whatever the others do
        try:
            status = harness.stop()
        except Exception as error:  # noqa: BLE001 - reported below, after every harness stopped
            problems.append(f"{harness.service.name} did not stop: {error}")
            continue
        if status != 0:
            problems.append(f"{harness.service.name} stopped with exit status {status}")
        problems.extend(f"{harness.service.name}: {error}" for error in harness.broker.protocol_errors)
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
