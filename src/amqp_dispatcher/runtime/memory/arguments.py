"""What a queue's declaration means to the in-memory broker, checked as RabbitMQ 3.10 checks it.

Owns reading `x-queue-type`, `x-message-ttl`, `x-max-length`, `x-max-length-bytes`,
`x-overflow`, `x-dead-letter-exchange`, `x-dead-letter-routing-key` and `x-delivery-limit` into
one frozen `Rules`, and refusing (406, with 3.10's wording) what 3.10 refuses at declare time: a
value of the wrong type or a negative one, an unknown overflow or queue type, a dead-letter
routing key without an exchange, a delivery limit on a classic queue, a quorum queue that is not
durable or is exclusive or auto-delete. Policies are not modelled: the arguments are the whole
story. Knows nothing of messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import DeclarationRefused
from ..spec import Queue

OVERFLOWS = ("drop-head", "reject-publish", "reject-publish-dlx")
_TYPES = ("classic", "quorum", "stream")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """A queue's behaviour, from its arguments. Times in milliseconds, as declared."""

    quorum: bool = False
    message_ttl: int | None = None
    max_length: int | None = None
    max_bytes: int | None = None
    overflow: str = "drop-head"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    delivery_limit: int | None = None

    @property
    def has_limit(self) -> bool:
        return self.max_length is not None or self.max_bytes is not None


def rules_of(queue: Queue) -> Rules:
    """The queue's rules; raises DeclarationRefused (406) where RabbitMQ 3.10 refuses the declaration."""
    arguments = queue.arguments
    kind = _text(queue.name, arguments, "x-queue-type") or "classic"
    if kind not in _TYPES:
        raise _invalid(queue.name, "x-queue-type", f"\"unsupported queue type '{kind}'\"")
    quorum = kind == "quorum"
    if quorum:
        _check_quorum_properties(queue)
    overflow = _text(queue.name, arguments, "x-overflow") or "drop-head"
    if overflow not in OVERFLOWS:
        raise _invalid(queue.name, "x-overflow", "invalid_overflow")
    exchange = _text(queue.name, arguments, "x-dead-letter-exchange")
    routing_key = _text(queue.name, arguments, "x-dead-letter-routing-key")
    if routing_key is not None and exchange is None:
        raise _invalid(queue.name, "x-dead-letter-routing-key", "routing_key_but_no_dlx_defined")
    limit = arguments.get("x-delivery-limit")
    if limit is not None and not quorum:
        raise _refused(
            f"invalid arg 'x-delivery-limit' for queue '{queue.name}' in vhost '/' of queue type rabbit_classic_queue"
        )
    return Rules(
        quorum=quorum,
        message_ttl=_count(queue.name, arguments, "x-message-ttl"),
        max_length=_count(queue.name, arguments, "x-max-length"),
        max_bytes=_count(queue.name, arguments, "x-max-length-bytes"),
        # 3.10's quorum queues know no reject-publish-dlx: they warn in the log and drop the head.
        overflow="drop-head" if quorum and overflow == "reject-publish-dlx" else overflow,
        dead_letter_exchange=exchange,
        dead_letter_routing_key=routing_key,
        delivery_limit=_integer(queue.name, arguments, "x-delivery-limit", negative=True),
    )


def _check_quorum_properties(queue: Queue) -> None:
    for refused, name in ((not queue.durable, "non-durable"), (queue.exclusive, "exclusive")):
        if refused:
            raise _refused(f"invalid property '{name}' for queue '{queue.name}' in vhost '/'")
    if queue.auto_delete:
        raise _refused(f"invalid property 'auto-delete' for queue '{queue.name}' in vhost '/'")


def _text(queue: str, arguments: Any, key: str) -> str | None:
    value = arguments.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _refused(f"invalid type '{amqp_type(value)}' for arg '{key}' in queue '{queue}' in vhost '/'")


def _count(queue: str, arguments: Any, key: str) -> int | None:
    return _integer(queue, arguments, key, negative=False)


def _integer(queue: str, arguments: Any, key: str, *, negative: bool) -> int | None:
    value = arguments.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(queue, key, f'"expected integer, got {amqp_type(value)}"')
    if value < 0 and not negative:
        raise _invalid(queue, key, f"{{value_negative,{value}}}")
    return value


def amqp_type(value: Any) -> str:
    """The AMQP field type RabbitMQ names for a value as pika would encode it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    types = ((str, "longstr"), (bytes, "binary"), (dict, "table"), (list, "array"), (Decimal, "decimal"))
    for kind, name in (*types, (datetime, "timestamp")):
        if isinstance(value, kind):
            return name
    return "void" if value is None else type(value).__name__


def _invalid(queue: str, key: str, why: str) -> DeclarationRefused:
    return _refused(f"invalid arg '{key}' for queue '{queue}' in vhost '/': {why}")


def _refused(text: str) -> DeclarationRefused:
    text = f"PRECONDITION_FAILED - {text}"
    return DeclarationRefused(f"406 {text}", reply_code=406, reply_text=text)
