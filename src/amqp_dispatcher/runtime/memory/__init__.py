"""An in-memory transport: the transport seam (runtime/transport.py) over a broker in this process.

For unit tests of the runtime's own logic, and for the test kit that runs a user's consumers
without RabbitMQ: the pools, proxy, policies and supervisor run unchanged on it, and a test
looks into the broker (what is ready, unacknowledged, settled, dead-lettered, and any protocol
error a client made) and breaks it (stops it, refuses connections, cancels consumers, sends
connection.blocked, nacks or never confirms publishes). It never stands in for RabbitMQ in an
integration test: broker.py says what it does not model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BrokerError
from ..settings import ConnectionSettings
from .broker import MemoryBroker, Stored
from .channel import MemoryChannel, MemoryConnection

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


__all__ = ["MemoryBroker", "MemoryChannel", "MemoryConnection", "MemoryTransport", "Stored"]

if TYPE_CHECKING:  # mypy holds both sides to the seam's interface

    def _conforms(
        transport: MemoryTransport, connection: MemoryConnection, channel: MemoryChannel
    ) -> tuple[Transport, Connection, Channel]:
        return transport, connection, channel
