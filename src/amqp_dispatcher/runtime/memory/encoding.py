"""What AMQP 0-9-1 can carry in a published message, checked as pika's encoder would refuse it.

Owns the in-memory broker's refusal of a publish that a real client could not encode: names and
short-string properties over 255 bytes, properties of the wrong type, and header tables with
values AMQP tables cannot hold (floats, integers beyond 64 bits, decimals beyond 32 bits,
non-text keys). Nothing is sent then (PublishUnencodable). Knows nothing of channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import PublishUnencodable

_SHORT_TEXT = frozenset(
    {
        "content_type",
        "content_encoding",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "type",
        "user_id",
        "app_id",
        "cluster_id",
    }
)
_OCTETS = frozenset({"delivery_mode", "priority"})
_LONG = 2**63
_INT32 = 2**31


def check_encodable(exchange: str, routing_key: str, properties: Mapping[str, Any]) -> None:
    if _too_long(exchange) or _too_long(routing_key):
        raise PublishUnencodable("the exchange name or routing key is longer than 255 bytes")
    for name, value in properties.items():
        if value is None:
            continue
        if name in _SHORT_TEXT and not (isinstance(value, str) and not _too_long(value)):
            raise _unencodable(f"{name} must be text of at most 255 bytes, not {value!r}")
        if name in _OCTETS and not (_is_int(value) and 0 <= value <= 255):
            raise _unencodable(f"{name} must be an integer from 0 to 255, not {value!r}")
        if name == "timestamp" and not (_is_int(value) and 0 <= value < 2**64):
            raise _unencodable(f"timestamp must be whole seconds, not {value!r}")
        if name == "headers":
            _check_table(value)


def _check_table(table: Any) -> None:
    if not isinstance(table, Mapping):
        raise _unencodable(f"headers must be a dict, not {type(table).__name__}")
    for key, value in table.items():
        if not isinstance(key, str) or _too_long(key):
            raise _unencodable(f"a header name must be text of at most 255 bytes, not {key!r}")
        _check_value(value)


def _check_value(value: Any) -> None:
    if isinstance(value, Mapping):
        _check_table(value)
    elif isinstance(value, list):
        for item in value:
            _check_value(item)
    elif value is None or isinstance(value, bool | str | bytes | datetime):
        return
    elif _is_int(value):
        if not -_LONG <= value < _LONG:
            raise _unencodable(f"{value} does not fit in 64 bits")
    elif isinstance(value, Decimal):
        _check_decimal(value)
    else:
        raise PublishUnencodable.of_value(value)


def _check_decimal(value: Decimal) -> None:
    """AMQP decimals are a 32-bit integer and a count of decimal places (one octet)."""
    try:
        exponent = value.normalize().as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        raw = int(value.scaleb(places))
    except (InvalidOperation, ValueError, OverflowError) as error:
        raise _unencodable(f"{value} is not a finite decimal") from error
    if places > 255 or not -_INT32 <= raw < _INT32:
        raise _unencodable(f"{value} does not fit in an AMQP decimal (32 bits, at most 255 places)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _too_long(text: str) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > 255


def _unencodable(reason: str) -> PublishUnencodable:
    return PublishUnencodable(f"cannot encode the message's properties: {reason}")
