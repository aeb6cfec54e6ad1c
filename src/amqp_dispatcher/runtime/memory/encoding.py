"""What AMQP 0-9-1 carries in a published message: what pika refuses to encode, what RabbitMQ
refuses to accept, and what a consumer gets back.

Owns the in-memory broker's refusal of a publish that a real client could not encode: names and
short-string properties over 255 bytes, properties of the wrong type, and header tables with
values AMQP tables cannot hold (floats, integers beyond 64 bits, decimals beyond 32 bits,
non-text keys). Nothing is sent then (PublishUnencodable). Then RabbitMQ's reading of the
expiration property (milliseconds as text; anything else closes the channel with 406, in
3.10's words), and header values as they come back through pika: a datetime as an aware UTC
datetime in whole seconds, a decimal normalised. Integers come back as int (pika hands those
it read as 64-bit over as pika.compat.long, an int subclass). Knows nothing of channels.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import DeclarationRefused, PublishUnencodable

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
_LEADING_INTEGER = re.compile(r"[+-]?[0-9]+")  # Erlang's string:to_integer, as 3.10 reads it


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


def expiration_ms(properties: Mapping[str, Any]) -> int | None:
    """The expiration property in milliseconds, None if unset; raises DeclarationRefused (406,
    in RabbitMQ 3.10's words) for text that is not a whole number of milliseconds."""
    value = properties.get("expiration")
    if value is None:
        return None
    text = str(value)
    match = _LEADING_INTEGER.match(text)
    if match is None:
        raise _invalid_expiration(text, "no_integer")
    number, rest = int(match.group()), text[match.end() :]
    if rest:
        raise _invalid_expiration(text, f'{{leftover_string,"{rest}"}}')
    if number < 0:
        raise _invalid_expiration(text, f"{{value_negative,{number}}}")
    return number


def carried(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties that are set, with header values as a consumer gets them back through pika."""
    kept = {name: value for name, value in properties.items() if value is not None}
    if isinstance(kept.get("headers"), Mapping):
        kept["headers"] = {key: _carried(value) for key, value in kept["headers"].items()}
    return kept


def _carried(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _carried(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_carried(item) for item in value]
    if isinstance(value, datetime):  # pika writes whole seconds of utctimetuple(): naive is UTC
        return datetime.fromtimestamp(calendar.timegm(value.utctimetuple()), timezone.utc)
    if isinstance(value, Decimal) and value.is_finite():
        normal = value.normalize()
        exponent = normal.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return Decimal(int(normal))
        return normal
    return value


def _invalid_expiration(text: str, why: str) -> DeclarationRefused:
    reply = f"PRECONDITION_FAILED - invalid expiration '{text}': {why}"
    return DeclarationRefused(f"406 {reply}", reply_code=406, reply_text=reply)
