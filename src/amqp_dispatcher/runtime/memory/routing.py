"""Routing in the in-memory broker: which queues an exchange sends a message to.

Owns the four exchange types as RabbitMQ routes them (direct, fanout, topic with `*` and `#`,
headers with x-match all or any, `x-` arguments ignored), the default exchange (the queue of
the routing key's name), and alternate exchanges: what an exchange routes nowhere goes to its
`alternate-exchange`, and on along a chain of them, each exchange visited once, as 3.10 does.
Exchange-to-exchange bindings, sender-selected distribution (CC/BCC) and the headers exchange's
any-with-x/all-with-x are not modelled. Knows nothing of what queues do with a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..spec import Binding, Exchange
    from .queue import MemoryQueue


def targets(
    exchanges: Mapping[str, Exchange],
    queues: Mapping[str, MemoryQueue],
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any],
) -> list[MemoryQueue]:
    """The queues `exchange` routes the message to, through its alternate exchanges if need be."""
    visited: set[str] = set()
    name: str | None = exchange
    while name is not None and name not in visited:
        visited.add(name)
        if name == "":
            found = queues.get(routing_key)
            return [found] if found is not None else []
        kind = exchanges[name].type
        routed = [queue for queue in queues.values() if _bound(queue, name, kind, routing_key, headers)]
        if routed:
            return routed
        alternate = exchanges[name].arguments.get("alternate-exchange")
        name = alternate if isinstance(alternate, str) and alternate in exchanges else None
    return []


def _bound(queue: MemoryQueue, exchange: str, kind: str, routing_key: str, headers: Mapping[str, Any]) -> bool:
    return any(
        source == exchange and matches(kind, binding, routing_key, headers) for source, binding in queue.bindings
    )


def matches(kind: str, binding: Binding, routing_key: str, headers: Mapping[str, Any]) -> bool:
    if kind == "fanout":
        return True
    if kind == "topic":
        return topic_matches(binding.routing_key.split("."), routing_key.split("."))
    if kind == "headers":
        wanted = {key: value for key, value in binding.arguments.items() if not key.startswith("x-")}
        hits = [key in headers and headers[key] == value for key, value in wanted.items()]
        return any(hits) if binding.arguments.get("x-match") == "any" else all(hits)
    return binding.routing_key == routing_key


def topic_matches(pattern: list[str], words: list[str]) -> bool:
    """A topic binding key against a routing key, word by word: `*` is one word, `#` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(topic_matches(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and topic_matches(rest, words[1:])
