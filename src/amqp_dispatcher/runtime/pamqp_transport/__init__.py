"""The seam (runtime/transport.py) over RabbitMQ through our own AMQP 0-9-1 client on pamqp.

The only importer of pamqp. Where pika builds objects and callbacks for every frame, this
client reads the socket in large chunks in one greenlet, decodes frames with pamqp (and
basic.deliver, which comes with every message, by a fast path), and hands each delivery to
the pool as soon as its body is complete (connection.py, channel.py). Message properties are
read into pika's types and field tables written as pika writes them (codec.py), so that the
two transports are interchangeable on the same broker. Knows nothing of pools, consumers,
topology or retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings import ConnectionSettings
from .channel import PamqpChannel
from .connection import PamqpConnection

if TYPE_CHECKING:
    from ..transport import Channel, Connection, Transport


class PamqpTransport:
    """RabbitMQ through the pamqp client."""

    def connect(
        self, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None
    ) -> PamqpConnection:
        return PamqpConnection.open(settings, name=name, blocked_timeout=blocked_timeout)

    def __repr__(self) -> str:
        return "<PamqpTransport>"


if TYPE_CHECKING:  # mypy holds this side to the seam's interface

    def _conforms(
        transport: PamqpTransport, connection: PamqpConnection, channel: PamqpChannel
    ) -> tuple[Transport, Connection, Channel]:
        return transport, connection, channel
