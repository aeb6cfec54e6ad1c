"""Frames: pika's frames as our Message, and the header frames pika cannot decode, salvaged.

Owns the Message over pika's frames (dicts built only when a consumer reads them), and the
decoding of a frame with a fallback: a header frame whose properties pika cannot decode is
rebuilt without its headers table, with the reason and the table's raw bytes, so that one
message never takes a connection down. Knows nothing of channels, pools or policies.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import pika
import pika.frame
import pika.spec

from ..message import PROPERTY_NAMES, FromMethod, Message, Undecodable
from ..transport import Delivery
from .translate import DECODING_ERRORS

if TYPE_CHECKING:
    from ..transport import Channel

# The method frame a message comes with: from a consumer, or from basic.get.
_Method = pika.spec.Basic.Deliver | pika.spec.Basic.GetOk


class _DeliveredMessage(FromMethod):
    """A Message over pika's frames, which builds its dicts only when a consumer reads them.

    Most consumers read the body and perhaps the headers; building the property and
    delivery_info dicts for every message would be work on the hot path for nothing.
    """

    __slots__ = ("_raw",)

    def __init__(self, method: _Method, properties: pika.spec.BasicProperties, body: bytes) -> None:
        self.body = body
        self._method = method
        self._raw = properties
        self._properties = None
        self._delivery_info = None

    @property
    def properties(self) -> dict[str, Any]:
        if self._properties is None:
            raw = self._raw
            self._properties = {
                name: value for name in PROPERTY_NAMES if (value := getattr(raw, name, None)) is not None
            }
        return self._properties

    @property
    def headers(self) -> dict[str, Any]:
        headers: dict[str, Any] = self._raw.headers or {}
        return headers

    @property
    def timestamp(self) -> int | None:
        stamp = self._raw.timestamp  # read off the frame: no properties dict built for it
        return stamp if type(stamp) is int else None


def delivery(channel: Channel, method: _Method, properties: pika.spec.BasicProperties, body: bytes) -> Delivery:
    undecodable = properties.undecodable if type(properties) is _SalvagedProperties else None
    return Delivery(channel, _message(method, properties, body), undecodable)


def decode_frame(buffer: bytes) -> tuple[int, pika.frame.Frame | pika.frame.ProtocolHeader | None]:
    """pika's decode_frame, except that a header frame whose properties fail to decode is salvaged."""
    try:
        return pika.frame.decode_frame(buffer)
    except DECODING_ERRORS as error:
        return _salvaged_header(buffer, error)


class _SalvagedProperties(pika.BasicProperties):
    """The properties of a message whose headers could not be decoded, with the reason."""

    def __init__(self, undecodable: Undecodable) -> None:
        super().__init__()
        self.undecodable = undecodable


def _salvaged_header(buffer: bytes, error: Exception) -> tuple[int, pika.frame.Header]:
    """A header frame whose properties failed to decode, rebuilt without its headers table.

    Other frames (and a header frame too short to hold its fixed fields) are malformed beyond
    any message's doing: the original error stands, and the connection closes.
    """
    frame_type, channel_number, size = struct.unpack_from(">BHL", buffer)
    end = 7 + size + 1
    payload = bytes(buffer[7 : end - 1])
    intact = buffer[end - 1 : end] == bytes([pika.spec.FRAME_END])
    if frame_type != pika.spec.FRAME_HEADER or len(payload) < 14 or not intact:
        raise error
    body_size = struct.unpack_from(">Q", payload, 4)[0]
    reason = f"{type(error).__name__}: {error}"
    properties, raw_headers = _without_headers(payload[12:])
    salvaged = _SalvagedProperties(Undecodable(reason=reason[:300], raw_headers=raw_headers))
    for name in PROPERTY_NAMES:
        if name != "headers":
            setattr(salvaged, name, getattr(properties, name, None))
    return end, pika.frame.Header(channel_number, body_size, salvaged)


def _without_headers(encoded: bytes) -> tuple[pika.spec.BasicProperties, bytes]:
    """The other properties, decoded by pika with the headers table cut out, and that table's bytes."""
    flags = struct.unpack_from(">H", encoded)[0]
    offset = 2
    for flag in (pika.spec.BasicProperties.FLAG_CONTENT_TYPE, pika.spec.BasicProperties.FLAG_CONTENT_ENCODING):
        if flags & flag:
            offset += 1 + encoded[offset]
    if flags & 1 or not flags & pika.spec.BasicProperties.FLAG_HEADERS or offset + 4 > len(encoded):
        return pika.BasicProperties(), b""  # continued flag words, or no table: nothing can be salvaged
    length = struct.unpack_from(">I", encoded, offset)[0]
    table = encoded[offset + 4 : offset + 4 + length]
    rest = struct.pack(">H", flags & ~pika.spec.BasicProperties.FLAG_HEADERS) + encoded[2:offset]
    rest += encoded[offset + 4 + length :]
    try:
        return pika.BasicProperties().decode(rest), table
    except DECODING_ERRORS:  # the table's length was wrong too: keep only the reason
        return pika.BasicProperties(), table


def _message(method: _Method, properties: pika.spec.BasicProperties, body: bytes) -> Message:
    """Our Message from pika's frames: bytes body, unset properties left out."""
    return _DeliveredMessage(method, properties, body)
