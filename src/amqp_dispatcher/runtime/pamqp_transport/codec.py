"""Frames on the wire: reading them with pamqp, writing them, and the values inside them.

Owns turning bytes into frames and frames into bytes for the pamqp transport:

- incoming method frames are decoded by pamqp, except basic.deliver, which comes with every
  message and is read by a fast path of its own;
- message properties are decoded into pika's types (the shape consumers of the original
  know), with a headers table that cannot be decoded salvaged instead of failing the frame;
- field tables are encoded exactly as pika encodes them (an integer as a signed 32-bit `I`
  when it fits, else, or when it arrived as one, a 64-bit `l`; bytes as `x`; no floats), so
  that a queue either transport declared is equivalent for RabbitMQ, and a message either can
  publish the other can too;
- outgoing methods are written here, field by field: pamqp's command classes accept only a
  subset of the names RabbitMQ does (no `!` or non-ASCII letters in a queue name, for one),
  and write tables in types of their own choosing.

Knows nothing of sockets, channels or greenlets.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import struct
from collections.abc import Callable, Mapping
from typing import Any

from pamqp import base, commands
from pamqp.exceptions import UnmarshalingException

from ..message import PROPERTY_NAMES, Undecodable

METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
HEAD = struct.Struct(">BHI")  # frame type, channel, payload size
_METHOD_ID = struct.Struct(">HH")
_ACK_FRAME = struct.Struct(">BHIHHQBB")  # a whole basic.ack frame: head, ids, tag, flags, end
_BODY_SIZE = struct.Struct(">HHQ")  # class, weight, body size

# What decoding a value can raise, for a value no code of ours has made.
DECODING_ERRORS = (
    struct.error,
    ValueError,
    OverflowError,
    OSError,
    KeyError,
    IndexError,
    RecursionError,
    UnicodeDecodeError,
    UnmarshalingException,
)
# What encoding a value can raise: pamqp's encoders raise TypeError for a value of the wrong type.
ENCODING_ERRORS = (struct.error, TypeError, ValueError, OverflowError)


class Unencodable(TypeError):
    """A value a field table cannot carry: pika refuses the same ones."""

    def __init__(self, value: object) -> None:
        super().__init__(f"cannot encode {value!r} ({type(value).__name__})")
        self.value = value


class Long(int):
    """An integer that arrived as a 64-bit field, and is written back as one (as pika's `long`)."""

    __slots__ = ()


class Float(float):
    """A number that arrived as a 32-bit float field, and is written back as one."""

    __slots__ = ()


class Double(float):
    """A number that arrived as a 64-bit float field, and is written back as one. A float of the
    service's own making stays unencodable, as with pika (RabbitMQ compares queue arguments with
    their types, and pika writes no floats)."""

    __slots__ = ()


class LongString(ValueError):
    """A short string (a name, a routing key, a property) longer than 255 bytes."""


# -- Reading


def method_frame(payload: bytes) -> base.Frame | Deliver | GetOk | Return:
    """A method frame's payload (class and method ids included) as its command; raises FrameError."""
    try:
        ids = _METHOD_ID.unpack_from(payload)
        fast = _FAST.get(ids)
        if fast is not None:
            carrier: Deliver | GetOk | Return = fast.decode(payload)
            return carrier
        command: base.Frame = commands.INDEX_MAPPING[ids[0] << 16 | ids[1]]()
        command.unmarshal(payload[4:])
    except KeyError:
        raise FrameError(f"an unknown method {ids}") from None
    except DECODING_ERRORS as error:
        raise FrameError(f"a method frame that cannot be decoded ({type(error).__name__}: {error})") from error
    return command


class FrameError(Exception):
    """A frame that AMQP 0-9-1 does not allow: the connection cannot go on."""


# The methods that carry a message, read without pamqp's generic decoder (they come with every
# message) and with names that are not UTF-8 kept as bytes, as pika keeps them: RabbitMQ routes
# a message with any routing key, and one such message must not take the connection down.


class Deliver:
    """basic.deliver."""

    __slots__ = ("consumer_tag", "delivery_tag", "exchange", "redelivered", "routing_key")

    def __init__(
        self,
        consumer_tag: str | bytes,
        delivery_tag: int,
        redelivered: bool,
        exchange: str | bytes,
        routing_key: str | bytes,
    ) -> None:
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key

    @classmethod
    def decode(cls, payload: bytes) -> Deliver:
        consumer_tag, offset = _short_string(payload, 4)
        delivery_tag, flags = struct.unpack_from(">QB", payload, offset)
        exchange, offset = _short_string(payload, offset + 9)
        routing_key, _ = _short_string(payload, offset)
        return cls(consumer_tag, delivery_tag, bool(flags & 1), exchange, routing_key)


class GetOk:
    """basic.get-ok."""

    __slots__ = ("delivery_tag", "exchange", "message_count", "redelivered", "routing_key")
    consumer_tag = None  # a message got, not delivered to a consumer

    def __init__(
        self, delivery_tag: int, redelivered: bool, exchange: str | bytes, routing_key: str | bytes, message_count: int
    ) -> None:
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.message_count = message_count

    @classmethod
    def decode(cls, payload: bytes) -> GetOk:
        delivery_tag, flags = struct.unpack_from(">QB", payload, 4)
        exchange, offset = _short_string(payload, 13)
        routing_key, offset = _short_string(payload, offset)
        return cls(delivery_tag, bool(flags & 1), exchange, routing_key, struct.unpack_from(">I", payload, offset)[0])


class Return:
    """basic.return: why the broker sends a published message back."""

    __slots__ = ("reply_code", "reply_text")

    def __init__(self, reply_code: int, reply_text: str) -> None:
        self.reply_code = reply_code
        self.reply_text = reply_text

    @classmethod
    def decode(cls, payload: bytes) -> Return:
        code = struct.unpack_from(">H", payload, 4)[0]
        text, _ = _short_string(payload, 6)
        return cls(code, text if isinstance(text, str) else text.decode(errors="replace"))


_FAST: dict[tuple[int, int], Any] = {(60, 60): Deliver, (60, 71): GetOk, (60, 50): Return}


def content_header(payload: bytes) -> tuple[int, dict[str, Any], Undecodable | None]:
    """A content header frame's payload: the body's size, the properties set (pika's types, by
    AMQP name), and why the headers table could not be decoded, if it could not."""
    body_size = _BODY_SIZE.unpack_from(payload)[2]
    encoded = payload[12:]
    try:
        return body_size, _properties(encoded), None
    except DECODING_ERRORS as error:
        reason = f"{type(error).__name__}: {error}"[:300]
    properties, table = _without_headers(encoded)
    return body_size, properties, Undecodable(reason=reason, raw_headers=table)


def _properties(encoded: bytes, *, skip_headers: bool = False) -> dict[str, Any]:
    flags = struct.unpack_from(">H", encoded)[0]
    if flags & 1:
        raise ValueError("property flags continue into a second word, which AMQP 0-9-1 does not define")
    properties: dict[str, Any] = {}
    if not flags:
        return properties
    offset = 2
    for bit, name, kind in _PROPERTY_LAYOUT:
        if not flags & bit:
            continue
        if kind == "table":
            size = struct.unpack_from(">I", encoded, offset)[0]
            if not skip_headers:
                properties[name] = decode_table(encoded, offset)[0]
            offset += 4 + size
        elif kind == "octet":
            properties[name] = encoded[offset]
            offset += 1
        elif kind == "timestamp":
            properties[name] = struct.unpack_from(">Q", encoded, offset)[0]
            offset += 8
        else:
            properties[name], offset = _short_string(encoded, offset)
    if offset > len(encoded):
        raise ValueError("the properties are shorter than their flags say")
    return properties


def _without_headers(encoded: bytes) -> tuple[dict[str, Any], bytes]:
    """The other properties, with the headers table cut out, and that table's bytes."""
    try:
        flags = struct.unpack_from(">H", encoded)[0]
        offset = 2
        for bit, _name, _kind in _PROPERTY_LAYOUT[:2]:
            if flags & bit:
                offset += 1 + encoded[offset]
        table = b""
        if flags & 0x2000:
            size = struct.unpack_from(">I", encoded, offset)[0]
            table = bytes(encoded[offset + 4 : offset + 4 + size])
        return _properties(encoded, skip_headers=True), table
    except DECODING_ERRORS:  # beyond the table too: keep only the reason
        return {}, b""


def _short_string(encoded: bytes, offset: int) -> tuple[str | bytes, int]:
    size = encoded[offset]
    value = bytes(encoded[offset + 1 : offset + 1 + size])
    if len(value) < size:
        raise ValueError("a short string runs past the end of its frame")
    try:
        return value.decode(), offset + 1 + size
    except UnicodeDecodeError:
        return value, offset + 1 + size


def decode_table(encoded: bytes, offset: int) -> tuple[dict[str | bytes, Any], int]:
    """A field table at `offset`, in pika's types; the table and the offset after it."""
    size = struct.unpack_from(">I", encoded, offset)[0]
    offset += 4
    end = offset + size
    if end > len(encoded):
        raise ValueError("a field table runs past the end of its frame")
    table: dict[str | bytes, Any] = {}
    while offset < end:
        key, offset = _short_string(encoded, offset)
        table[key], offset = _decode_value(encoded, offset)
    return table, offset


def _decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    kind = encoded[offset : offset + 1]
    offset += 1
    fixed = _FIXED.get(kind)
    if fixed is not None:
        layout, convert = fixed
        return convert(layout.unpack_from(encoded, offset)[0]), offset + layout.size
    if kind == b"S" or kind == b"x":
        size = struct.unpack_from(">I", encoded, offset)[0]
        value = bytes(encoded[offset + 4 : offset + 4 + size])
        if len(value) < size:
            raise ValueError("a long string runs past the end of its frame")
        if kind == b"S":
            try:
                return value.decode(), offset + 4 + size
            except UnicodeDecodeError:
                pass
        return value, offset + 4 + size
    if kind == b"D":
        places, raw = struct.unpack_from(">Bi", encoded, offset)
        return decimal.Decimal(raw) * (decimal.Decimal(10) ** -places), offset + 5
    if kind == b"T":
        stamp = struct.unpack_from(">Q", encoded, offset)[0]
        return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc), offset + 8
    if kind == b"F":
        return decode_table(encoded, offset)
    if kind == b"A":
        size = struct.unpack_from(">I", encoded, offset)[0]
        offset += 4
        end = offset + size
        values = []
        while offset < end:
            value, offset = _decode_value(encoded, offset)
            values.append(value)
        return values, offset
    if kind == b"V":
        return None, offset
    raise ValueError(f"unknown field type {kind!r}")


def _same(value: Any) -> Any:
    return value


# Fixed-size field values: their layout and the conversion to pika's type. Floats stay floats
# (pika 1.4 truncates them to integers), and are written back as they came; 'U', 'L' and 'l'
# are signed, as RabbitMQ sends them.
_FIXED: dict[bytes, tuple[struct.Struct, Callable[[Any], Any]]] = {
    b"t": (struct.Struct(">B"), bool),
    b"b": (struct.Struct(">b"), _same),
    b"B": (struct.Struct(">B"), _same),
    b"s": (struct.Struct(">h"), _same),
    b"U": (struct.Struct(">h"), _same),
    b"u": (struct.Struct(">H"), _same),
    b"I": (struct.Struct(">i"), _same),
    b"i": (struct.Struct(">I"), _same),
    b"l": (struct.Struct(">q"), Long),
    b"L": (struct.Struct(">q"), Long),
    b"f": (struct.Struct(">f"), Float),
    b"d": (struct.Struct(">d"), Double),
}

# The basic properties in the specification's order: flag bit, AMQP name, kind of value.
_PROPERTY_LAYOUT = tuple(
    (1 << (15 - index), name, kind)
    for index, (name, kind) in enumerate(
        zip(
            PROPERTY_NAMES,
            (
                "shortstr",
                "shortstr",
                "table",
                "octet",
                "octet",
                "shortstr",
                "shortstr",
                "shortstr",
                "shortstr",
                "timestamp",
                "shortstr",
                "shortstr",
                "shortstr",
                "shortstr",
            ),
            strict=True,
        )
    )
)


# -- Writing


def short_string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 255:
        raise LongString(f"{raw[:40]!r}... is {len(raw)} bytes, and AMQP short strings hold at most 255")
    return bytes((len(raw),)) + raw


def encode_table(table: Mapping[str, Any] | None) -> bytes:
    """A field table, as pika encodes it."""
    pieces = [short_string(key) + _encode_value(value) for key, value in (table or {}).items()]
    body = b"".join(pieces)
    return struct.pack(">I", len(body)) + body


def _encode_value(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return b"S" + struct.pack(">I", len(raw)) + raw
    if isinstance(value, bytes):
        return b"x" + struct.pack(">I", len(value)) + value
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        try:
            if type(value) is not Long and -(2**31) <= value < 2**31:
                return b"I" + struct.pack(">i", value)
            return b"l" + struct.pack(">q", value)
        except struct.error as error:
            raise Unencodable(value) from error
    if type(value) is Double:
        return b"d" + struct.pack(">d", value)
    if type(value) is Float:
        return b"f" + struct.pack(">f", value)
    if isinstance(value, decimal.Decimal):
        return b"D" + _decimal(value)
    if isinstance(value, datetime.datetime):
        return b"T" + struct.pack(">Q", _seconds(value))
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, list):
        body = b"".join(_encode_value(item) for item in value)
        return b"A" + struct.pack(">I", len(body)) + body
    if value is None:
        return b"V"
    raise Unencodable(value)


def _decimal(value: decimal.Decimal) -> bytes:
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        return struct.pack(">Bi", -exponent, int(value * (decimal.Decimal(10) ** -exponent)))
    return struct.pack(">Bi", 0, int(value))


def _seconds(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return int(value.timestamp())


def encode_properties(properties: Mapping[str, Any]) -> bytes:
    """The properties part of a content header, from AMQP names (unset ones left out)."""
    unknown = set(properties) - set(PROPERTY_NAMES)
    if unknown:
        raise TypeError(f"unknown message properties: {', '.join(sorted(unknown))}")
    flags = 0
    parts = []
    for bit, name, kind in _PROPERTY_LAYOUT:
        value = properties.get(name)
        if value is None:
            continue
        flags |= bit
        if kind == "table":
            parts.append(encode_table(value))
        elif kind == "octet":
            parts.append(struct.pack(">B", value.value if isinstance(value, enum.Enum) else value))
        elif kind == "timestamp":
            parts.append(struct.pack(">Q", _seconds(value) if isinstance(value, datetime.datetime) else value))
        else:
            if not isinstance(value, str | bytes):
                raise TypeError(f"the {name} property must be text, not {type(value).__name__}")
            parts.append(short_string(value))
    return struct.pack(">H", flags) + b"".join(parts)


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return HEAD.pack(kind, channel, len(payload)) + payload + b"\xce"


def method(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    """A method frame; `arguments` are the method's encoded fields."""
    return frame(METHOD, channel, _METHOD_ID.pack(class_id, method_id) + arguments)


def content(channel: int, properties: bytes, body: bytes, frame_max: int) -> bytes:
    """The header frame and the body frames of a message, no frame above `frame_max` bytes."""
    parts = [frame(HEADER, channel, _BODY_SIZE.pack(60, 0, len(body)) + properties)]
    step = frame_max - 8  # a frame's head (7 bytes) and end (1)
    parts.extend(frame(BODY, channel, body[start : start + step]) for start in range(0, len(body), step))
    return b"".join(parts)


def ack(channel: int, tag: int, multiple: bool) -> bytes:
    return _ACK_FRAME.pack(METHOD, channel, 13, 60, 80, tag, multiple, FRAME_END)


def nack(channel: int, tag: int, requeue: bool) -> bytes:
    return method(channel, 60, 120, struct.pack(">QB", tag, 2 if requeue else 0))


def reject(channel: int, tag: int, requeue: bool) -> bytes:
    return method(channel, 60, 90, struct.pack(">QB", tag, 1 if requeue else 0))


def close_fields(code: int, text: str) -> bytes:
    """The fields of a connection.close or channel.close from this side (no failing method)."""
    return code.to_bytes(2, "big") + short_string(text) + b"\x00\x00\x00\x00"


def bits(*flags: bool) -> bytes:
    """Consecutive bit fields, packed into one octet as AMQP packs them."""
    return bytes((sum(1 << position for position, flag in enumerate(flags) if flag),))


HEARTBEAT_FRAME = bytes((HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END))
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
