"""What a test asserts on: messages, answers and failures, as plain read-only values.

Owns turning the in-memory broker's records and the runtime's log records into values that
compare and print well, copied so that a test cannot change the broker by changing them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..runtime import jsonlogs
from ..runtime.memory import Stored
from ..runtime.memory.broker import Settled


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message as a queue holds it: body, headers, the other properties, where it came from."""

    body: bytes
    headers: Mapping[str, Any]
    properties: Mapping[str, Any] = field(repr=False)
    exchange: str
    routing_key: str
    redelivered: bool
    delivery_count: int = 0  # a quorum queue's count of returns (x-delivery-count)

    @property
    def text(self) -> str:
        """The body as UTF-8 text (raises UnicodeDecodeError if it is not)."""
        return self.body.decode("utf-8")


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer the service gave: ack, nack or reject, whether requeued, and from which queue."""

    how: str
    requeue: bool
    queue: str
    message: QueuedMessage


@dataclass(frozen=True, slots=True)
class DroppedMessage:
    """A message that left the broker without reaching a queue: from which queue (None for a
    publish), why (expired, maxlen, rejected, delivery_limit, unroutable...), and the detail."""

    message: QueuedMessage
    queue: str | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Failure:
    """An exception a consumer raised, with the consumer (module:Class) and its queue."""

    consumer: str
    queue: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.consumer} on {self.queue!r} raised {type(self.error).__name__}: {self.error}"


def view(stored: Stored) -> QueuedMessage:
    properties = copy.deepcopy(stored.properties)
    headers = properties.pop("headers", None) or {}
    return QueuedMessage(
        body=stored.body,
        headers=headers,
        properties=properties,
        exchange=stored.exchange,
        routing_key=stored.routing_key,
        redelivered=stored.redelivered,
        delivery_count=stored.delivery_count,
    )


def answers(settled: Iterable[Settled]) -> list[Answer]:
    return [Answer(one.how, one.requeue, one.queue, view(one.message)) for one in settled]


def failure_of(record: logging.LogRecord) -> Failure | None:
    """The failure a pool's "consume raised" record reports, or None for any other record."""
    if not record.exc_info or not record.msg.endswith("consume raised on delivery %d"):
        return None
    error = record.exc_info[1]
    fields = getattr(record, jsonlogs.RECORD_FIELDS, {})
    if error is None:  # pragma: no cover - exc_info always carries the exception here
        return None
    return Failure(str(fields.get("consumer", "?")), str(fields.get("queue", "?")), error)
