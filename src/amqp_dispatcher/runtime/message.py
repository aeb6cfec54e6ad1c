"""The message a consumer receives: body, headers, properties and delivery information.

Owns the shape of `msg`, which consumers of the original amqp-dispatcher rely on: `body` is
always bytes (whatever it holds), `properties` is a dict without unset fields and with the
headers under "headers", and `delivery_info` names exchange, routing_key, delivery_tag,
redelivered and consumer_tag. Knows nothing of pika or of acknowledgements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
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


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Why a message's headers could not be decoded, and their bytes as they arrived."""

    reason: str
    raw_headers: bytes


class Message:
    """One delivery's content. Decoding is left to the consumer: see `text`."""

    __slots__ = ("_delivery_info", "_properties", "body")

    def __init__(self, body: bytes, properties: dict[str, Any], delivery_info: dict[str, Any]) -> None:
        self.body = body
        self._properties: dict[str, Any] | None = properties
        self._delivery_info: dict[str, Any] | None = delivery_info

    @property
    def properties(self) -> dict[str, Any]:
        """The properties that are set, by AMQP name; the headers are under "headers"."""
        assert self._properties is not None
        return self._properties

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.get("headers") or {}

    @property
    def delivery_info(self) -> dict[str, Any]:
        """exchange, routing_key, delivery_tag, redelivered and consumer_tag."""
        assert self._delivery_info is not None
        return self._delivery_info

    @property
    def timestamp(self) -> int | None:
        """The AMQP timestamp property (whole seconds since the epoch), if the publisher set one."""
        stamp = self.properties.get("timestamp")
        return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None

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


class FromMethod(Message):
    """A Message over the method frame it came with (basic.deliver or basic.get-ok, as a
    transport decoded it: anything with exchange, routing_key, delivery_tag and redelivered,
    and consumer_tag unless it was got): the delivery_info dict is built only when a consumer
    reads it. Each transport's subclass sets body, _method, _properties and _delivery_info."""

    __slots__ = ("_method",)
    _method: Any

    @property
    def delivery_info(self) -> dict[str, Any]:
        if self._delivery_info is None:
            method = self._method
            self._delivery_info = {
                "exchange": method.exchange,
                "routing_key": method.routing_key,
                "delivery_tag": method.delivery_tag,
                "redelivered": method.redelivered,
                "consumer_tag": getattr(method, "consumer_tag", None),  # basic.get has none
            }
        return self._delivery_info

    @property
    def delivery_tag(self) -> int:
        return int(self._method.delivery_tag)


def encode_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Publish properties as AMQP carries them: expiration as text, timestamp as whole seconds."""
    encoded = dict(properties)
    if "expiration" in encoded and encoded["expiration"] is not None:
        encoded["expiration"] = str(encoded["expiration"])
    stamp = encoded.get("timestamp")
    if isinstance(stamp, datetime):
        aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        encoded["timestamp"] = int(aware.timestamp())
    return encoded
