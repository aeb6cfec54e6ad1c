"""Dead-lettering, as RabbitMQ 3.10 does it: the x-death header, the cycle rule, and where the message goes.

Owns the message a queue dead-letters (rabbit_dead_letter:make_msg in 3.10): an `x-death`
entry per (queue, reason) with count, reason, queue, time, exchange, routing-keys and, if the
message had one, original-expiration (the expiration property is removed); an entry seen
before gets count + 1 and moves to the front, a new one is prepended. 3.10 regroups the
other entries on every death, which reverses their order (observed on 3.10.8, and kept here,
since its cycle rule reads that order). `x-first-death-reason/queue/exchange` are set when
there was no x-death. The headers come out sorted by name, as 3.10 writes them, and each
entry's fields in 3.10's order (the first entry ever written unsorted, any rewritten one sorted).

Types are those a consumer gets through the pika transport: `time` an aware UTC datetime in
whole seconds, entries dicts, routing-keys a list of str, count an int (pika hands it over as
pika.compat.long, an int subclass whose repr ends in L). Then the cycle rule: unless the
reason is `rejected`, a queue that already appears in x-death does not receive the message if
every entry up to and including that queue's is not `rejected` (a fully automatic cycle).

Sender-selected distribution (CC/BCC headers) is not modelled: routing-keys holds the
message's routing key alone. Dead-lettering is at most once (quorum queues' at-least-once
strategy is not modelled). 3.13 and 4.x rewrote dead-lettering (message containers), and their
x-death differs from 3.10's in its details; this follows 3.10. Knows nothing of channels or
consumers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .records import DeadLettered, Stored, copy_message, copy_properties

if TYPE_CHECKING:
    from .broker import MemoryBroker
    from .queue import MemoryQueue

REASONS = ("rejected", "expired", "maxlen", "delivery_limit")


def dead_letter(broker: MemoryBroker, queue: MemoryQueue, message: Stored, reason: str) -> None:
    """Send the message to the queue's dead-letter exchange, or record it dropped."""
    rules = queue.rules
    exchange = rules.dead_letter_exchange
    if exchange is None:
        broker.drop(message, queue.name, reason, "the queue has no dead-letter exchange")
        return
    if exchange not in broker.exchanges:
        broker.drop(message, queue.name, reason, f"its dead-letter exchange {exchange!r} does not exist")
        return
    routing_key = rules.dead_letter_routing_key
    dead = dead_message(message, reason, queue.name, exchange, routing_key, broker.clock.time())
    broker.dead_lettered.append(DeadLettered(dead, queue.name, reason, exchange))
    targets = broker.targets(exchange, dead.routing_key, dead.headers)
    cycling = [target.name for target in targets if reason != "rejected" and is_cycle(target.name, dead.headers)]
    targets = [target for target in targets if target.name not in cycling]
    accepted = sum(target.enqueue(copy_message(dead)) for target in targets)
    if accepted:
        return
    if cycling:
        names = " -> ".join([cycling[0], *(str(entry.get("queue")) for entry in _deaths(dead.headers))])
        detail = f"a dead-letter cycle without a rejection in it ({names})"
    elif targets:
        detail = f"dead-letter exchange {exchange!r} routed it only to queues that refused it"
    else:
        detail = f"dead-letter exchange {exchange!r} routed it to no queue"
    broker.drop(dead, queue.name, reason, detail)


def dead_message(
    message: Stored, reason: str, queue: str, exchange: str, routing_key: str | None, now: float
) -> Stored:
    """The message as it leaves `queue` for `exchange`, its x-death written."""
    properties = copy_properties(message.properties)
    expiration = properties.pop("expiration", None)
    info: dict[str, Any] = {
        "reason": reason,
        "queue": queue,
        "time": datetime.fromtimestamp(int(now), timezone.utc),
        "exchange": message.exchange,
        "routing-keys": [message.routing_key],
    }
    if expiration is not None:
        info["original-expiration"] = expiration
    headers = properties.get("headers")
    properties["headers"] = with_death(headers if isinstance(headers, dict) else {}, info)
    return Stored(
        message.body,
        properties,
        exchange,
        routing_key if routing_key is not None else message.routing_key,
        undecodable=message.undecodable,
    )


def with_death(headers: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """3.10's update_x_death_header: the headers with this death recorded, sorted by name."""
    updated = dict(headers)
    deaths = updated.get("x-death")
    if deaths is None:
        updated["x-first-death-reason"] = info["reason"]
        updated["x-first-death-queue"] = info["queue"]
        updated["x-first-death-exchange"] = info["exchange"]
        updated["x-death"] = [{"count": 1, **info}]
    elif isinstance(deaths, list):
        grouped = _grouped([entry for entry in deaths if isinstance(entry, dict)])
        key = (info["queue"], info["reason"])
        matches = [entry for entry in grouped if _key(entry) == key]
        others = [entry for entry in grouped if _key(entry) != key]
        entry = _incremented(matches[0]) if matches else {"count": 1, **info}
        updated["x-death"] = [_sorted(entry), *others]
    else:  # not an array (a client rewrote it): 3.10 starts it again, with a warning in its log
        updated["x-death"] = [{"count": 1, **info}]
    return _sorted(updated)


def is_cycle(queue: str, headers: dict[str, Any]) -> bool:
    """3.10's is_cycle: `queue` appears in x-death, and no entry up to its own says `rejected`."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        return False
    for entry in deaths:
        if not isinstance(entry, dict):
            return False  # something a client put there: not a fully automatic cycle
        if entry.get("reason") == "rejected":
            return False
        if entry.get("queue") == queue:
            return True
    return False


def _grouped(deaths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """3.10's group_by_queue_and_reason: one entry per (queue, reason), the first of each, in
    reverse order (its fold prepends), with a count where an entry had none."""
    if len(deaths) <= 1:
        return list(deaths)
    seen: set[tuple[Any, Any]] = set()
    grouped: list[dict[str, Any]] = []
    for entry in deaths:
        key = _key(entry)
        same = [other for other in deaths if _key(other) == key]
        first = same[0] if "count" in same[0] else {"count": len(same), **same[0]}
        if not grouped:
            grouped = [first]
        elif key not in seen:
            grouped.insert(0, first)
        seen.add(key)
    return grouped


def _incremented(entry: dict[str, Any]) -> dict[str, Any]:
    count = entry.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return {**entry, "count": count + 1}
    return {"count": 1, **entry}


def _key(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry.get("queue"), entry.get("reason")


def _sorted(table: dict[str, Any]) -> dict[str, Any]:
    """A field table in RabbitMQ's order: by name, byte for byte (code point order is UTF-8's)."""
    return {name: table[name] for name in sorted(table)}


def _deaths(headers: dict[str, Any]) -> list[dict[str, Any]]:
    deaths = headers.get("x-death")
    return [entry for entry in deaths if isinstance(entry, dict)] if isinstance(deaths, list) else []
