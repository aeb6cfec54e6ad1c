"""Everything pika: the transport seam (runtime/transport.py) over RabbitMQ, through pika.

The only importer of pika. pika's GeventConnection runs its callbacks inside the gevent hub,
where nothing may block; this package turns each RPC into a call that a greenlet waits on
(channel.py), coalesces acknowledgements into few frames (acks.py), opens connections
(connection.py), translates pika's errors into ours (translate.py), and salvages the header
frames pika cannot decode (frames.py). Knows nothing of pools, consumers, topology or retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings import ConnectionSettings
from .channel import PikaChannel
from .connection import PikaConnection

if TYPE_CHECKING:
    from ..transport import Channel, Connection, Transport


class PikaTransport:
    """The default transport: RabbitMQ through pika's GeventConnection."""

    def connect(
        self, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None
    ) -> PikaConnection:
        return PikaConnection.open(settings, name=name, blocked_timeout=blocked_timeout)

    def __repr__(self) -> str:
        return "<PikaTransport>"


if TYPE_CHECKING:  # mypy holds this side to the seam's interface

    def _conforms(
        transport: PikaTransport, connection: PikaConnection, channel: PikaChannel
    ) -> tuple[Transport, Connection, Channel]:
        return transport, connection, channel
