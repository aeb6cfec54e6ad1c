"""The AsyncAPI document's messages: any message, a retried copy, a parked one.

Owns the three message objects and the two message traits that describe the headers the retry
protocol sets (`x-dispatcher-attempts`, the last error, the first exchange and routing key)
and those a parked message carries besides (the exception, the consumer, the queue, when),
named by the runtime's own constants (runtime/policy.py), so that the document cannot drift
from what the runtime writes. A payload is the consumer's business: none is described.
"""

from __future__ import annotations

from typing import Any

from amqp_dispatcher.runtime import policy

DELIVERY, RETRIED, PARKED = "delivery", "retried", "parked"
_RETRY_TRAIT, _PARKING_TRAIT = "retryProtocol", "parking"

Object = dict[str, Any]


def reference(name: str) -> Object:
    return {"$ref": f"#/components/messages/{name}"}


def components() -> Object:
    return {
        "messages": {
            DELIVERY: _message(DELIVERY, "A message", "Any message: its payload is the consumer's to read."),
            RETRIED: _message(
                RETRIED,
                "A retried message",
                "A copy of a message whose consume raised, waiting for its next attempt.",
                _RETRY_TRAIT,
            ),
            PARKED: _message(
                PARKED,
                "A parked message",
                "A message set aside after its last attempt, or because its headers could not be decoded.",
                _RETRY_TRAIT,
                _PARKING_TRAIT,
            ),
        },
        "messageTraits": {
            _RETRY_TRAIT: {"headers": _headers(_RETRY_HEADERS)},
            _PARKING_TRAIT: {"headers": _headers(_PARKING_HEADERS)},
        },
    }


def _message(name: str, title: str, summary: str, *traits: str) -> Object:
    message: Object = {"name": name, "title": title, "summary": summary}
    if traits:
        message["traits"] = [{"$ref": f"#/components/messageTraits/{trait}"} for trait in traits]
    return message


def _headers(fields: dict[str, tuple[str, str]]) -> Object:
    properties = {name: {"type": kind, "description": text} for name, (kind, text) in fields.items()}
    return {"type": "object", "properties": properties}


_RETRY_HEADERS = {
    policy.ATTEMPTS: ("integer", "How many attempts have failed so far."),
    policy.LAST_ERROR: ("string", "The last error, its type and message (at most 1,000 characters)."),
    policy.ORIGINAL_EXCHANGE: ("string", "The exchange the message first came through."),
    policy.ORIGINAL_ROUTING_KEY: ("string", "The routing key it first came with."),
    policy.ORIGINAL_HEADERS: ("string", "Its headers as text, when they could not be sent again as they were."),
}
_PARKING_HEADERS = {
    policy.EXCEPTION_TYPE: ("string", "The exception's module and class."),
    policy.EXCEPTION_MESSAGE: ("string", "The exception's message (at most 1,000 characters)."),
    policy.CONSUMER: ("string", "The consumer entry that parked it."),
    policy.QUEUE: ("string", "The queue it was consumed from, where `parked replay` returns it."),
    policy.PARKED_AT: ("integer", "When it was parked, in seconds since the Unix epoch."),
    policy.UNDECODABLE: ("string", "Why its headers could not be decoded, for a message parked unread."),
    policy.RAW_HEADERS: ("string", "The bytes of its headers as they arrived, for a message parked unread."),
}
