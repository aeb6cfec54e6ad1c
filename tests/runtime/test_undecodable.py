"""Frames whose properties pika cannot decode: salvaged, never a dropped connection.

The frames are built byte by byte, as a hostile or buggy publisher can send them through
RabbitMQ (which passes out-of-range timestamps and tables nested thousands deep untouched).
"""

from __future__ import annotations

import struct

import pika
import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.pika_transport import frames

FLAGS = pika.spec.BasicProperties


def table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def short(text: bytes) -> bytes:
    return bytes([len(text)]) + text


def timestamp(seconds: int) -> bytes:
    return b"T" + struct.pack(">Q", seconds)


def nested(depth: int, leaf: bytes) -> bytes:
    """A value `depth` tables deep, around `leaf` (a typed value)."""
    value = leaf
    for _ in range(depth):
        value = b"F" + table(short(b"n") + value)
    return value


# Values pika decodes, and values it cannot: a timestamp past year 9999, a table nested past
# the recursion limit. Any of them may sit at any depth of the headers.
GOOD_VALUES = st.one_of(
    st.binary(max_size=20).map(lambda raw: b"S" + struct.pack(">I", len(raw)) + raw),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b"l" + struct.pack(">q", n)),
    st.integers(0, 253_402_300_799).map(timestamp),
    st.just(b"V"),
)
BAD_VALUES = st.one_of(
    st.integers(253_402_300_800, 2**64 - 1).map(timestamp),
    st.integers(1100, 3000).map(lambda depth: nested(depth, b"V")),
    st.integers(253_402_300_800, 2**64 - 1).map(lambda n: b"A" + table(timestamp(n))),
)


@st.composite
def headers_table(draw: st.DrawFn, *, hostile: bool) -> bytes:
    values = draw(st.lists(GOOD_VALUES, max_size=4))
    if hostile:
        values.insert(draw(st.integers(0, len(values))), draw(BAD_VALUES))
    entries = b"".join(
        short(f"k{index}".encode()) + nested(draw(st.integers(0, 3)), value) for index, value in enumerate(values)
    )
    return table(entries)


def header_frame(headers: bytes, *, body_size: int = 5, message_id: bytes = b"m-1") -> bytes:
    flags = FLAGS.FLAG_CONTENT_TYPE | FLAGS.FLAG_HEADERS | FLAGS.FLAG_DELIVERY_MODE | FLAGS.FLAG_MESSAGE_ID
    flags |= FLAGS.FLAG_TIMESTAMP
    properties = struct.pack(">H", flags) + short(b"application/json") + headers + b"\x02" + short(message_id)
    properties += struct.pack(">Q", 1_700_000_000)
    payload = struct.pack(">HHQ", 60, 0, body_size) + properties
    return struct.pack(">BHL", pika.spec.FRAME_HEADER, 1, len(payload)) + payload + bytes([pika.spec.FRAME_END])


@settings(max_examples=200, deadline=None)
@given(headers_table(hostile=True), st.integers(0, 2**40), st.binary(max_size=8))
def test_a_header_frame_pika_cannot_decode_is_salvaged_with_its_other_properties(
    headers: bytes, body_size: int, following: bytes
) -> None:
    frame = header_frame(headers, body_size=body_size)
    with pytest.raises(Exception):  # noqa: B017 - what pika raises varies: the point is that it does
        pika.frame.decode_frame(frame)
    consumed, value = frames.decode_frame(frame + following)
    assert consumed == len(frame), "the frame loop goes on at the next frame"
    assert isinstance(value, pika.frame.Header) and value.body_size == body_size
    properties = value.properties
    assert properties.headers is None
    assert (properties.content_type, properties.delivery_mode, properties.message_id) == ("application/json", 2, "m-1")
    assert properties.timestamp == 1_700_000_000
    assert properties.undecodable.raw_headers == headers[4:], "the headers' bytes, exactly as they arrived"
    assert properties.undecodable.reason


@settings(max_examples=100, deadline=None)
@given(headers_table(hostile=False))
def test_a_frame_pika_decodes_is_left_exactly_as_pika_decodes_it(headers: bytes) -> None:
    frame = header_frame(headers)
    expected = pika.frame.decode_frame(frame)
    consumed, value = frames.decode_frame(frame)
    assert consumed == expected[0] and type(value.properties) is pika.BasicProperties
    assert vars(value.properties) == vars(expected[1].properties)


def test_a_corrupt_frame_still_closes_the_connection() -> None:
    frame = header_frame(table(timestamp(2**64 - 1)))
    with pytest.raises(pika.exceptions.InvalidFrameError):
        frames.decode_frame(frame[:-1] + b"\x00")  # not a frame end: the stream is broken
    method = pika.frame.Method(1, pika.spec.Basic.Ack(delivery_tag=1)).marshal()
    assert frames.decode_frame(method)[0] == len(method)


def test_a_salvaged_message_carries_its_reason_to_the_delivery() -> None:
    _, value = frames.decode_frame(header_frame(table(short(b"when") + timestamp(2**63))))
    method = pika.spec.Basic.Deliver(consumer_tag="c", delivery_tag=3, redelivered=False, exchange="e", routing_key="k")
    delivery = frames.delivery(None, method, value.properties, b"body")  # type: ignore[arg-type]
    assert delivery.undecodable is not None and "out of range" in delivery.undecodable.reason
    assert delivery.message.properties == {
        "content_type": "application/json",
        "delivery_mode": 2,
        "message_id": "m-1",
        "timestamp": 1_700_000_000,
    }
