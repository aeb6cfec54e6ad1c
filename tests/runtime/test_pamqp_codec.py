"""The pamqp transport's codec (runtime/pamqp_transport/codec.py), against pika's as the oracle.

The two transports must be interchangeable on one broker: a table written by either is the same
bytes (RabbitMQ compares a redeclared queue's arguments with their types), properties read by
either are the same dict, and what one cannot send the other cannot either.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

import pika
import pika.data
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands
from pamqp import frame as pamqp_frame

from amqp_dispatcher.runtime.pamqp_transport import codec

keys = st.text(max_size=20).filter(lambda key: len(key.encode()) <= 255)
scalars = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**5), max_value=10**5),
    st.datetimes(
        min_value=datetime.datetime(1970, 1, 2),
        max_value=datetime.datetime(9999, 1, 1),
        timezones=st.just(datetime.timezone.utc),
    ).map(lambda moment: moment.replace(microsecond=0)),
    st.none(),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)
tables = st.dictionaries(keys, values, max_size=6)


def pika_table(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    return b"".join(pieces)


@settings(max_examples=100)
@given(tables)
def test_a_table_is_the_same_bytes_as_pika_writes(table: dict[str, Any]) -> None:
    assert codec.encode_table(table) == pika_table(table)


@settings(max_examples=100)
@given(tables)
def test_a_table_reads_back_as_pika_reads_it(table: dict[str, Any]) -> None:
    encoded = pika_table(table)
    ours, end = codec.decode_table(encoded, 0)
    theirs, their_end = pika.data.decode_table(encoded, 0)
    assert (ours, end) == (theirs, their_end)


@pytest.mark.parametrize("value", [1.5, 2**63, -(2**63) - 1, object(), {1, 2}, (1, 2)])
def test_what_pika_cannot_send_neither_can_this_transport(value: object) -> None:
    with pytest.raises(codec.Unencodable) as caught:
        codec.encode_table({"v": value})
    assert caught.value.value is value
    with pytest.raises((pika.exceptions.UnsupportedAMQPFieldException, struct.error)):
        pika_table({"v": value})


@given(st.floats(allow_nan=False, width=32), st.floats(allow_nan=False))
def test_floats_in_a_received_table_stay_floats(single: float, double: float) -> None:
    """RabbitMQ passes on 'f' and 'd' values other clients write; pika 1.4 truncates them to integers."""
    encoded = b"\x01ff" + struct.pack(">f", single) + b"\x01dd" + struct.pack(">d", double)
    table, _ = codec.decode_table(struct.pack(">I", len(encoded)) + encoded, 0)
    assert table == {"f": struct.unpack(">f", struct.pack(">f", single))[0], "d": double}


short_text = st.text(max_size=40).filter(lambda text: len(text.encode()) <= 255)
properties = st.fixed_dictionaries(
    {},
    optional={
        "content_type": short_text,
        "content_encoding": short_text,
        "headers": tables.filter(bool),
        "delivery_mode": st.sampled_from([1, 2]),
        "priority": st.integers(0, 255),
        "correlation_id": short_text,
        "reply_to": short_text,
        "expiration": st.integers(0, 10**9).map(str),
        "message_id": short_text,
        "timestamp": st.integers(0, 2**40),
        "type": short_text,
        "user_id": short_text,
        "app_id": short_text,
        "cluster_id": short_text,
    },
)


def pika_properties(values: dict[str, Any]) -> bytes:
    return b"".join(pika.BasicProperties(**values).encode())


@settings(max_examples=100)
@given(properties)
def test_properties_are_written_as_pika_writes_them_and_read_back_whole(values: dict[str, Any]) -> None:
    encoded = codec.encode_properties(values)
    assert encoded == pika_properties(values)
    size, decoded, undecodable = codec.content_header(struct.pack(">HHQ", 60, 0, 42) + encoded)
    assert (size, undecodable) == (42, None)
    assert decoded == values  # an empty string is sent, and read back, as pika does


def test_an_unknown_property_or_one_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown message properties: colour"):
        codec.encode_properties({"colour": "red"})
    with pytest.raises(TypeError, match="message_id property must be text"):
        codec.encode_properties({"message_id": 7})


def salvaged(table_bytes: bytes, **others: Any) -> tuple[dict[str, Any], Any]:
    """A content header whose headers table is `table_bytes`, read back."""
    rest = pika_properties(others)
    flags = struct.unpack_from(">H", rest)[0]
    # the headers table goes after content_type and content_encoding, which these tests leave unset
    assert not flags & 0xC000
    encoded = struct.pack(">H", flags | 0x2000) + struct.pack(">I", len(table_bytes)) + table_bytes + rest[2:]
    _, decoded, undecodable = codec.content_header(struct.pack(">HHQ", 60, 0, 0) + encoded)
    return decoded, undecodable


@pytest.mark.parametrize(
    "field, error",
    [
        (b"T" + struct.pack(">Q", 2**62), "ValueError|OverflowError|OSError"),  # past year 9999
        (b"?", "ValueError"),  # an unknown field type
        (b"S" + struct.pack(">I", 99) + b"short", "ValueError"),  # a string longer than the frame
    ],
)
def test_a_headers_table_that_cannot_be_read_is_salvaged_with_the_other_properties(field: bytes, error: str) -> None:
    table = b"\x01k" + field
    decoded, undecodable = salvaged(table, message_id="m-1", delivery_mode=2, timestamp=7)
    assert decoded == {"message_id": "m-1", "delivery_mode": 2, "timestamp": 7}
    assert undecodable is not None and undecodable.raw_headers == table
    assert undecodable.reason.split(":")[0] in error.split("|")


def test_a_table_nested_beyond_the_recursion_limit_is_salvaged() -> None:
    depth = 5000
    inner = b""
    for _ in range(depth):
        inner = b"\x01kF" + struct.pack(">I", len(inner)) + inner
    decoded, undecodable = salvaged(inner, correlation_id="c")
    assert decoded == {"correlation_id": "c"}
    assert undecodable is not None and undecodable.reason.startswith("RecursionError")


@given(
    st.text(max_size=30).filter(lambda t: len(t.encode()) <= 255),
    st.integers(1, 2**63 - 1),  # pamqp reads the unsigned tag as signed; a broker never numbers so far
    st.booleans(),
    short_text,
    short_text,
)
def test_the_fast_basic_deliver_reads_what_pamqp_reads(
    consumer_tag: str, tag: int, redelivered: bool, exchange: str, routing_key: str
) -> None:
    payload = (
        struct.pack(">HH", 60, 60)
        + codec.short_string(consumer_tag)
        + struct.pack(">QB", tag, int(redelivered))
        + codec.short_string(exchange)
        + codec.short_string(routing_key)
    )
    fast = codec.method_frame(payload)
    generic = commands.Basic.Deliver()
    generic.unmarshal(payload[4:])
    assert isinstance(fast, codec.Deliver)
    assert (fast.consumer_tag, fast.delivery_tag, fast.redelivered, fast.exchange, fast.routing_key) == (
        generic.consumer_tag,
        generic.delivery_tag,
        generic.redelivered,
        generic.exchange,
        generic.routing_key,
    )


@given(st.binary(max_size=20000), st.integers(min_value=4096, max_value=9000))  # AMQP: frame_max >= 4096
def test_a_body_is_split_into_frames_no_larger_than_agreed_and_joins_back(body: bytes, frame_max: int) -> None:
    data = codec.content(5, codec.encode_properties({}), body, frame_max)
    frames = []
    while data:
        consumed, channel, value = pamqp_frame.unmarshal(data)
        assert consumed <= frame_max and channel == 5
        frames.append(value)
        data = data[consumed:]
    header, *parts = frames
    assert header.body_size == len(body)
    assert b"".join(part.value for part in parts) == body


@given(st.integers(1, 2**64 - 1), st.booleans(), st.booleans())
def test_settling_frames_are_what_pamqp_reads(tag: int, multiple: bool, requeue: bool) -> None:
    for data, expected in (
        (codec.ack(3, tag, multiple), commands.Basic.Ack(tag, multiple)),
        (codec.nack(3, tag, requeue), commands.Basic.Nack(tag, False, requeue)),
        (codec.reject(3, tag, requeue), commands.Basic.Reject(tag, requeue)),
    ):
        consumed, channel, value = pamqp_frame.unmarshal(data)
        assert (consumed, channel) == (len(data), 3)
        assert type(value) is type(expected) and vars(value) == vars(expected)


def test_decimal_places_are_kept() -> None:
    value = decimal.Decimal("12.345")
    assert codec.decode_table(codec.encode_table({"d": value}), 0)[0] == {"d": value}


@given(st.floats(width=32, allow_nan=False), st.floats(allow_nan=False))
def test_floats_received_are_written_back_as_they_came(single: float, double: float) -> None:
    """A retried or parked copy carries a float header as it arrived, and a float of the
    service's own making stays unencodable, as with pika."""
    encoded = b"\x01ff" + struct.pack(">f", single) + b"\x01dd" + struct.pack(">d", double)
    table = struct.pack(">I", len(encoded)) + encoded
    decoded, _ = codec.decode_table(table, 0)
    assert codec.encode_table(decoded) == table
    with pytest.raises(codec.Unencodable):
        codec.encode_table({"f": float(decoded["f"])})


def test_an_enum_property_is_sent_as_its_value_as_pika_sends_it() -> None:
    assert codec.encode_properties({"delivery_mode": pika.DeliveryMode.Persistent}) == pika_properties(
        {"delivery_mode": pika.DeliveryMode.Persistent}
    )
