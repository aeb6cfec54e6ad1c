"""What the in-memory broker holds and what it records: messages, answers, drops, dead-letterings.

Owns the plain records a test reads: `Stored` (a message as one queue holds it, with what the
queue keeps beside it: its place in the queue, its expiry, a quorum queue's delivery count),
`Settled` (an answer a client gave), `Dropped` (a message that left the broker without being
acknowledged, and why) and `DeadLettered` (a message a queue dead-lettered). Knows nothing of
routing, queues or channels.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..message import Undecodable


@dataclass(slots=True)
class Stored:
    """A message as a queue holds it.

    `sequence` is its place in the queue's arrival order (a classic queue puts a requeued
    message back by it), `expires_at` the clock's monotonic reading at which it expires (None:
    never), `delivery_count` how often a quorum queue has had it back (x-delivery-count).
    """

    body: bytes
    properties: dict[str, Any]
    exchange: str
    routing_key: str
    redelivered: bool = False
    # Set for a message whose headers a real transport could not have decoded (a test's doing).
    undecodable: Undecodable | None = None
    sequence: int = 0
    expires_at: float | None = None
    delivery_count: int = 0

    @property
    def headers(self) -> dict[str, Any]:
        headers = self.properties.get("headers")
        return headers if isinstance(headers, dict) else {}


@dataclass(frozen=True, slots=True)
class Settled:
    """One answer a client gave: the message, how, whether requeued, and from which queue."""

    message: Stored
    how: str
    requeue: bool
    queue: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message that left the broker unacknowledged and reached no queue.

    `reason` is why it left its queue ("expired", "maxlen", "rejected", "delivery_limit" as in
    x-death, or "deleted" with its queue), "maxlen" too for a message a full queue refused
    (x-overflow reject-publish), or why no queue received it ("unroutable", or "returned" to a
    mandatory publisher); `queue` is the queue it left or that refused it (None if it reached
    none); `detail` says in words why it went nowhere else.
    """

    message: Stored
    queue: str | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A message a queue dead-lettered: as it left (`message`, x-death included), from where, why, to which exchange."""

    message: Stored
    queue: str
    reason: str
    exchange: str


def copy_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A copy that shares no mutable headers with the original: each queue and delivery holds its own."""
    copied = dict(properties)
    if isinstance(copied.get("headers"), dict):
        copied["headers"] = copy.deepcopy(copied["headers"])
    return copied


def copy_message(message: Stored) -> Stored:
    """A fresh copy for another queue: same content, no queue's state."""
    return Stored(
        message.body,
        copy_properties(message.properties),
        message.exchange,
        message.routing_key,
        undecodable=message.undecodable,
    )
