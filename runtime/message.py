"""The message a consumer receives: body, headers, properties and delivery information.

Owns the shape of `msg`, which consumers of the original amqp-dispatcher rely on: `body` is
always bytes (whatever it holds), `properties` is a dict without unset fields and with the
headers under "headers", and `delivery_info` names exchange, routing_key, delivery_tag,
redelivered and consumer_tag. Knows nothing of pika or of acknowledgements.
"""

from __future__ import annotations

from typing import Any

# The basic properties of AMQP 0-9-1, in the order of the specification.
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


class Message:
    """One delivery's content. Decoding is left to the consumer: see `text`."""

    __slots__ = ("body", "delivery_info", "headers", "properties")

    def __init__(self, body: bytes, properties: dict[str, Any], delivery_info: dict[str, Any]) -> None:
        self.body = body
        self.properties = properties
        self.headers: dict[str, Any] = properties.get("headers") or {}
        self.delivery_info = delivery_info

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; raises UnicodeDecodeError if it is not UTF-8."""
        return self.body.decode("utf-8")

    @property
    def delivery_tag(self) -> int:
        return int(self.delivery_info["delivery_tag"])

    @property
    def routing_key(self) -> str:
        return str(self.delivery_info["routing_key"])

    @property
    def redelivered(self) -> bool:
        return bool(self.delivery_info["redelivered"])

    def __len__(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"<Message {len(self.body)} bytes from {self.delivery_info.get('exchange')!r} {self.routing_key!r}>"
