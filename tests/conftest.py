"""Shared test setup: where things are, and the transports a test runs on.

Services under test reach RabbitMQ through the default transport, or the one
DISPATCHER_TRANSPORT names for the whole run. A test marked `each_transport` runs once on each
transport instead: those are the tests of what a transport itself does (connecting, TLS,
decoding hostile frames, batching acks, confirms), so that the transport that is not the
default stays selectable and tested. A test marked `serial` changes the system broker for every
test at once; scripts/test runs the others in two parallel workers, then these alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amqp_dispatcher.runtime import transports

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "each_transport: run once on each transport (DISPATCHER_TRANSPORT)")
    config.addinivalue_line(
        "markers",
        "serial: changes the system broker for everyone (a restart, a memory alarm): scripts/test runs it alone",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("each_transport"):
        metafunc.fixturenames.append("transport_name")
        metafunc.parametrize("transport_name", transports.NAMES, indirect=True)


@pytest.fixture
def transport_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transport this run of an `each_transport` test uses: services it starts inherit it."""
    name: str = request.param
    monkeypatch.setenv(transports.VARIABLE, name)
    return name
