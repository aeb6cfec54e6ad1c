"""Queue arguments RabbitMQ knows, and which queue types accept each one.

Owns the applicability table, taken from what RabbitMQ 3.10 and 4.x refuse at declare time
(406 PRECONDITION_FAILED "invalid arg ... of queue type ..."). Types and ranges live in the
JSON Schema; this module only knows where each argument may appear.
"""

from __future__ import annotations

CLASSIC, QUORUM, STREAM = "classic", "quorum", "stream"
_ALL = frozenset({CLASSIC, QUORUM, STREAM})
_NOT_STREAM = frozenset({CLASSIC, QUORUM})

QUEUE_ARGUMENTS: dict[str, frozenset[str]] = {
    "x-queue-type": _ALL,
    "x-message-ttl": _NOT_STREAM,
    "x-expires": _NOT_STREAM,
    "x-max-length": _NOT_STREAM,
    "x-max-length-bytes": _ALL,
    "x-overflow": _NOT_STREAM,
    "x-dead-letter-exchange": _NOT_STREAM,
    "x-dead-letter-routing-key": _NOT_STREAM,
    "x-dead-letter-strategy": frozenset({QUORUM}),
    "x-single-active-consumer": _NOT_STREAM,
    "x-max-priority": frozenset({CLASSIC}),
    "x-queue-mode": frozenset({CLASSIC}),
    "x-queue-version": frozenset({CLASSIC}),
    "x-queue-master-locator": frozenset({CLASSIC}),
    "x-delivery-limit": frozenset({QUORUM}),
    "x-quorum-initial-group-size": frozenset({QUORUM}),
    "x-queue-leader-locator": frozenset({QUORUM, STREAM}),
    "x-initial-cluster-size": frozenset({STREAM}),
    "x-max-age": frozenset({STREAM}),
    "x-stream-max-segment-size-bytes": frozenset({STREAM}),
}

# Exchanges every RabbitMQ vhost has, with their types.
PREDECLARED_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}


def accepts(queue_type: str, argument: str) -> bool:
    """Whether a queue of this type accepts the argument (unknown arguments are accepted)."""
    return queue_type in QUEUE_ARGUMENTS.get(argument, _ALL)
