"""An in-memory transport: the transport seam (runtime/transport.py) over a broker in this process.

For unit tests of the runtime's own logic, and for the test kit that runs a user's consumers
without RabbitMQ: the pools, proxy, policies and supervisor run unchanged on it, on a clock a
test can move (runtime/clock.py). It follows RabbitMQ 3.10 where a service's behaviour depends
on it (TTL, dead-lettering and x-death, length limits, quorum delivery limits, requeue order,
confirms and returns), checked against it by tests/integration/test_memory_fidelity.py. A test
looks into the broker (what is ready, unacknowledged, settled, dead-lettered, dropped and why,
and any protocol error a client made) and breaks it (stops it, refuses connections, cancels
consumers, sends connection.blocked, nacks or never confirms publishes). It never stands in
for RabbitMQ in an integration test: broker.py says what it does not model.

The modules: broker.py (the vhost and what a test does to it), queue.py (inside a queue),
deadletter.py (x-death and the cycle rule), routing.py (exchanges), arguments.py (a queue's
arguments), records.py (what a test reads), encoding.py (what AMQP carries), channel.py
(connections and channels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BrokerError
from ..settings import ConnectionSettings
from .broker import MemoryBroker
from .channel import MemoryChannel, MemoryConnection
from .records import DeadLettered, Dropped, Settled, Stored

if TYPE_CHECKING:
    from ..transport import Channel, Connection, Transport


class MemoryTransport:
    """Connects to one MemoryBroker; counts the connections made and the attempts refused."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self.opened = 0
        self.refused = 0

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.broker!r}>"

    def connect(
        self, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None
    ) -> MemoryConnection:
        refusing = self.broker.refusing
        if refusing is not None:
            self.refused += 1
            if isinstance(refusing, BrokerError):
                raise type(refusing)(f"{settings.describe()}: {refusing}")
            raise refusing
        self.opened += 1
        return MemoryConnection(self.broker, name)


__all__ = [
    "DeadLettered",
    "Dropped",
    "MemoryBroker",
    "MemoryChannel",
    "MemoryConnection",
    "MemoryTransport",
    "Settled",
    "Stored",
]

if TYPE_CHECKING:  # mypy holds both sides to the seam's interface

    def _conforms(
        transport: MemoryTransport, connection: MemoryConnection, channel: MemoryChannel
    ) -> tuple[Transport, Connection, Channel]:
        return transport, connection, channel
