"""Parked messages: what the retry policy set aside, listed and replayed.

Owns the work behind `amqp-dispatcher parked ls` and `parked replay`: reading a parking queue
without taking anything out of it, and moving messages back to the queue they came from, with
a fresh attempt count, each one acknowledged in the parking queue only after the broker has
confirmed its copy. Knows nothing of the config or the command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import policy, transports
from .settings import ConnectionSettings
from .transport import Channel, Transport

_PROVENANCE = {
    policy.ATTEMPTS,
    policy.LAST_ERROR,
    policy.ORIGINAL_EXCHANGE,
    policy.ORIGINAL_ROUTING_KEY,
    policy.EXCEPTION_TYPE,
    policy.EXCEPTION_MESSAGE,
    policy.CONSUMER,
    policy.QUEUE,
    policy.PARKED_AT,
}


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """What a parked message says about itself."""

    size: int
    attempts: int | None
    error: str
    consumer: str
    queue: str | None
    origin: str
    parked_at: str

    @classmethod
    def read(cls, body: bytes, headers: dict[str, Any]) -> ParkedMessage:
        stamp = headers.get(policy.PARKED_AT)
        return cls(
            size=len(body),
            attempts=headers.get(policy.ATTEMPTS),
            error=str(headers.get(policy.LAST_ERROR, "(no error recorded)")),
            consumer=str(headers.get(policy.CONSUMER, "?")),
            queue=headers.get(policy.QUEUE),
            origin=f"{headers.get(policy.ORIGINAL_EXCHANGE)!r} / {headers.get(policy.ORIGINAL_ROUTING_KEY)!r}",
            parked_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) if isinstance(stamp, int) else "?",
        )

    def describe(self) -> str:
        return (
            f"{self.error} | attempts {self.attempts} | consumer {self.consumer} | parked {self.parked_at} | "
            f"first published to {self.origin} | {self.size} bytes"
        )


def list_parked(
    settings: ConnectionSettings, parking_queue: str, limit: int, transport: Transport | None = None
) -> tuple[int, list[ParkedMessage]]:
    """How many messages the queue holds, and the first `limit` of them; nothing is removed."""
    with _channel(settings, transport) as channel:
        count = channel.message_count(parking_queue)
        messages = []
        for _ in range(min(count, limit)):
            delivery = channel.get(parking_queue)
            if delivery is None:
                break
            messages.append(ParkedMessage.read(delivery.message.body, delivery.message.headers))
        # Closing the channel returns every message it got, unacknowledged, to the queue.
    return count, messages


def replay(
    settings: ConnectionSettings, parking_queue: str, work_queue: str, limit: int, transport: Transport | None = None
) -> tuple[int, int]:
    """Move up to `limit` messages back to the queue each came from; returns how many moved, and
    how many were left parked because their headers could not be decoded.

    Those go back to no consumer: they would be undecodable again, or, after the parking, reach
    it with the raw bytes of their headers instead of the headers. They stay parked (the reader
    channel does not acknowledge them, and closing it returns them) for a person to look at.
    """
    moved = kept = 0
    with _channel(settings, transport) as reader, _channel(settings, transport) as writer:
        writer.enable_confirms()
        while moved < limit:
            delivery = reader.get(parking_queue)
            if delivery is None:
                break
            message = delivery.message
            if delivery.undecodable is not None or policy.UNDECODABLE in message.headers:
                kept += 1
                continue
            target = str(message.headers.get(policy.QUEUE) or work_queue)
            headers = {key: value for key, value in message.headers.items() if key not in _PROVENANCE}
            properties = {**message.properties, "headers": headers}
            writer.publish("", target, message.body, properties, mandatory=True, timeout=30.0)
            delivery.ack()
            moved += 1
    return moved, kept


@contextmanager
def _channel(settings: ConnectionSettings, transport: Transport | None) -> Iterator[Channel]:
    if transport is None:
        transport = transports.from_environment(os.environ)  # the broker the command line names
    connection = transport.connect(settings, name="amqp-dispatcher parked")
    try:
        yield connection.channel()
    finally:
        connection.close(timeout=5.0)
