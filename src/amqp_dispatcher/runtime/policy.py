"""Error policies: what happens to a message whose `consume` raised, or that cannot be decoded.

Owns the three policies of `on_error` and the retry protocol. `requeue` puts the message back
at once (the original's behaviour); `reject` sends it to the queue's dead-letter exchange;
`retry` republishes a copy, with publisher confirms, to a delay queue whose TTL dead-letters
it back to the work queue, and acknowledges the original only once the copy is confirmed, so
nothing is lost and nothing waits unacknowledged in memory. After the last attempt the copy goes
to the parking queue with headers saying why. A message whose headers could not be decoded is
parked, or dead-lettered as it was sent. Knows nothing of channels or instances.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import PublishError, PublishUnencodable
from .message import PROPERTY_NAMES, Message
from .spec import Reject, Requeue, Retry

if TYPE_CHECKING:
    from .logs import PrefixedLog
    from .publisher import Publisher
    from .spec import LiveEntry
    from .transport import Delivery

# Headers of the retry protocol. Attempts counts failed attempts so far.
ATTEMPTS = "x-dispatcher-attempts"
LAST_ERROR = "x-dispatcher-error"
ORIGINAL_EXCHANGE = "x-dispatcher-exchange"
ORIGINAL_ROUTING_KEY = "x-dispatcher-routing-key"
# Provenance of a parked message.
EXCEPTION_TYPE = "x-dispatcher-exception-type"
EXCEPTION_MESSAGE = "x-dispatcher-exception-message"
CONSUMER = "x-dispatcher-consumer"
QUEUE = "x-dispatcher-queue"
PARKED_AT = "x-dispatcher-parked-at"
# A message whose headers could not be decoded: why, and the headers' bytes as they arrived.
UNDECODABLE = "x-dispatcher-undecodable"
RAW_HEADERS = "x-dispatcher-raw-headers"
# The headers of a message that could not be sent again as they were, as text.
ORIGINAL_HEADERS = "x-dispatcher-original-headers"

_MAX_TEXT = 1000
_PUBLISH_TIMEOUT = 30.0


def restore_origin(message: Message) -> None:
    """A retried message shows the exchange and routing key it first came with, as redelivered."""
    headers = message.headers
    if ATTEMPTS in headers:
        message.delivery_info["exchange"] = headers.get(ORIGINAL_EXCHANGE, message.delivery_info["exchange"])
        message.delivery_info["routing_key"] = headers.get(ORIGINAL_ROUTING_KEY, message.delivery_info["routing_key"])
        message.delivery_info["redelivered"] = True


def settle_failure(
    delivery: Delivery, error: BaseException, entry: LiveEntry, name: str, publisher: Publisher, log: PrefixedLog
) -> None:
    """Settle an unanswered message whose consume raised, as the entry's policy says."""
    match entry.on_error:
        case Retry() as retry:
            _retry(delivery, error, retry, entry, name, publisher, log)
        case Reject():
            _answer(delivery.reject(requeue=False), "reject", delivery, log)
        case Requeue():
            # reject (not nack) so that quorum queues count the failure towards their delivery limit.
            _answer(delivery.reject(requeue=True), "requeue", delivery, log)


def settle_undecodable(
    delivery: Delivery, entry: LiveEntry, name: str, publisher: Publisher, log: PrefixedLog
) -> str | None:
    """Set aside a message whose headers could not be decoded, and say where it went; None if the
    parking queue could not take it yet and it went back to its queue (the caller backs off).

    It never reaches the consumer (it would not be the message that was sent) and is not
    requeued on purpose (it would come back undecodable, forever). With a retry policy it is
    parked, with the reason and its headers' raw bytes; otherwise it is rejected without
    requeue, so the queue's dead-letter exchange receives it exactly as it was sent.
    """
    undecodable = delivery.undecodable
    assert undecodable is not None
    retry = entry.on_error
    if not isinstance(retry, Retry):
        _answer(delivery.reject(requeue=False), "reject", delivery, log)
        return (
            "rejected without requeue, so the queue's dead-letter exchange receives it as it was sent "
            "(a queue without one drops it)"
        )
    reason = _text(undecodable.reason)
    extra = {
        UNDECODABLE: reason,
        RAW_HEADERS: undecodable.raw_headers,
        LAST_ERROR: f"undecodable headers: {reason}",
        ORIGINAL_EXCHANGE: delivery.message.delivery_info["exchange"],
        ORIGINAL_ROUTING_KEY: delivery.message.delivery_info["routing_key"],
        **_provenance("amqp_dispatcher.runtime.undecodable", reason, entry, name),
    }
    target = retry.parking_queue
    if not _move(delivery, target, extra, publisher, log, outcome="parked"):
        return None
    return f"parked in {target} with its headers' raw bytes"


def _retry(
    delivery: Delivery,
    error: BaseException,
    retry: Retry,
    entry: LiveEntry,
    name: str,
    publisher: Publisher,
    log: PrefixedLog,
) -> None:
    message = delivery.message
    attempts = _attempts(message.headers) + 1
    extra: dict[str, Any] = {
        ATTEMPTS: attempts,
        LAST_ERROR: _text(f"{type(error).__name__}: {error}"),
        ORIGINAL_EXCHANGE: message.headers.get(ORIGINAL_EXCHANGE, message.delivery_info["exchange"]),
        ORIGINAL_ROUTING_KEY: message.headers.get(ORIGINAL_ROUTING_KEY, message.delivery_info["routing_key"]),
    }
    if attempts >= retry.max_attempts:
        target = retry.parking_queue
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        extra.update(_provenance(kind, _text(str(error)), entry, name))
    else:
        target = retry.delay_queues[min(attempts - 1, len(retry.delay_queues) - 1)]
    outcome = "parked" if target == retry.parking_queue else "retry"
    if not _move(delivery, target, extra, publisher, log, outcome=outcome):
        return
    if target == retry.parking_queue:
        log.warning("parked delivery %d in %s after %d attempts: %s", delivery.tag, target, attempts, extra[LAST_ERROR])
    else:
        delay = retry.delays[retry.delay_queues.index(target)]
        log.info(
            "delivery %d will be retried in %g s (attempt %d of %d)",
            delivery.tag,
            delay,
            attempts + 1,
            retry.max_attempts,
        )


def _provenance(kind: str, message: str, entry: LiveEntry, name: str) -> dict[str, Any]:
    """What a parked message says of why and where it failed."""
    return {
        EXCEPTION_TYPE: kind,
        EXCEPTION_MESSAGE: message,
        CONSUMER: name,
        QUEUE: entry.queue,
        PARKED_AT: int(time.time()),
    }


def _move(
    delivery: Delivery, target: str, extra: dict[str, Any], publisher: Publisher, log: PrefixedLog, *, outcome: str
) -> bool:
    """Publish a copy to `target`, its headers with `extra`, and ack the original once the copy is
    confirmed; if it cannot be published, requeue the original and return False.

    Headers that decode but cannot be encoded again (an integer past 64 bits, which pika makes of
    a large double) would fail the copy on every attempt: the copy then carries them as text, in
    ORIGINAL_HEADERS, rather than loop.
    """
    message = delivery.message
    properties = {key: value for key, value in message.properties.items() if key in PROPERTY_NAMES}
    # The copy is persistent whatever the original was, and never expires: it must survive
    # while it waits, and a parking queue must not lose what it holds.
    properties.update(headers={**message.headers, **extra}, delivery_mode=2)
    properties.pop("cluster_id", None)
    properties.pop("expiration", None)
    try:
        try:
            publisher.publish("", target, message.body, properties, mandatory=True, timeout=_PUBLISH_TIMEOUT)
        except PublishUnencodable as unencodable:
            log.warning(
                "delivery %d: its headers cannot be sent again as they are (%s); the copy carries them as text",
                delivery.tag,
                unencodable,
            )
            properties["headers"] = {**extra, ORIGINAL_HEADERS: _text(repr(message.headers))}
            publisher.publish("", target, message.body, properties, mandatory=True, timeout=_PUBLISH_TIMEOUT)
    except PublishError as failure:
        log.error("could not move delivery %d to %s (%s); requeueing it instead", delivery.tag, target, failure)
        _answer(delivery.reject(requeue=True), "requeue", delivery, log)
        return False
    _answer(delivery.ack(), "ack", delivery, log, outcome=outcome)
    return True


def _attempts(headers: Mapping[str, Any]) -> int:
    value = headers.get(ATTEMPTS, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _answer(sent: bool, how: str, delivery: Delivery, log: PrefixedLog, *, outcome: str | None = None) -> None:
    """Note where the message went (`outcome`, by default `how`), or that its channel had closed."""
    delivery.outcome = (outcome or how) if sent else "dropped_stale"
    if not sent:
        log.warning(
            "could not %s delivery %d: its channel has closed, and the broker has requeued it", how, delivery.tag
        )


def _text(value: str) -> str:
    return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 3] + "..."
