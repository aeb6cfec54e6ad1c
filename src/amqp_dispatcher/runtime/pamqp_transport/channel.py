"""An AMQP channel of the pamqp transport: RPCs as blocking calls, deliveries straight to the pool.

Owns a channel's side of the protocol: one RPC at a time (AMQP answers a channel's
synchronous methods in order), each waited on by the calling greenlet and failed at once if
the channel closes meanwhile; deliveries assembled from their method, header and body frames
and handed to the consumer's callback in the reader greenlet, with no object per frame that
a consumer does not read; acknowledgements held back until the hub's next turn so that a run
of them goes as one frame (which frames, runtime/acks.py decides); and publishing with a
confirm, one message in flight per channel, so that a return is never mistaken for another
message's. Knows nothing of sockets, pools, consumers or retries.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import gevent
import gevent.event
import gevent.lock
from pamqp import commands

from .. import replies
from ..acks import Frame, HeldAcks
from ..errors import (
    BrokerError,
    ConnectionLost,
    PublishRefused,
    PublishReturned,
    PublishTimeout,
    PublishUnencodable,
)
from ..logs import TRANSPORT, get_logger
from ..message import FromMethod, Undecodable
from ..spec import Binding, Exchange, Queue
from ..transport import CloseCallback, Delivery, DeliveryCallback
from . import codec

if TYPE_CHECKING:
    from .connection import PamqpConnection

log = get_logger(TRANSPORT)

RPC_TIMEOUT = 30.0
_T = TypeVar("_T")
_NO_ARGUMENTS = b"\x00\x00"  # the reserved "ticket" field that opens most methods


class _NoAnswer(ConnectionLost):
    """The broker did not answer an RPC in time: the connection is as good as lost."""


class _Consumer:
    __slots__ = ("on_cancel", "on_delivery")

    def __init__(self, on_delivery: DeliveryCallback, on_cancel: Callable[[], None]) -> None:
        self.on_delivery = on_delivery
        self.on_cancel = on_cancel


class PamqpChannel(HeldAcks):
    """An open channel; RPCs wait for their answer, settling never waits."""

    def __init__(self, number: int, connection: PamqpConnection) -> None:
        self._number = number
        self.connection = connection
        self._send_bytes: Callable[..., None] = connection.send
        # Never gets a value: its exception is why the channel closed.
        self.closed: gevent.event.AsyncResult[None] = gevent.event.AsyncResult()
        self._open = False
        self._on_close: list[CloseCallback] = []
        self._rpc_lock = gevent.lock.Semaphore()
        self._reply: gevent.event.AsyncResult[Any] | None = None
        self._expected: tuple[tuple[int, int], ...] = ()  # the class and method ids of its answers
        self._closing = False  # this side sent channel.close
        self._consumers: dict[str, _Consumer] = {}
        self._publish_lock = gevent.lock.Semaphore()
        self._confirm: gevent.event.AsyncResult[bool] | None = None
        self._returned: tuple[int, str] | None = None
        # The message being assembled: its method, properties, why its headers failed, body parts.
        self._method: Any = None
        self._properties: dict[str, Any] = {}
        self._undecodable: Undecodable | None = None
        self._body: list[bytes] | None = None  # None: no header yet
        self._remaining = 0
        self._hold_acks()

    @property
    def number(self) -> int:
        return self._number

    @property
    def is_open(self) -> bool:
        return self._open

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def open(self) -> None:
        self._rpc(codec.method(self._number, 20, 10, b"\x00"), "opening a channel", opening=True)
        self._open = True

    def qos(self, prefetch_count: int) -> None:
        self._rpc(codec.method(self._number, 60, 10, struct.pack(">IHB", 0, prefetch_count, 0)), "setting the prefetch")
        self._ack_window(prefetch_count)

    def consume(self, queue: str, on_delivery: DeliveryCallback, *, on_cancel: Callable[[], None]) -> str:
        """Start consuming; `on_delivery` runs in the reader greenlet for each message and must not block."""
        # A tag of this side's making, shaped as pika makes them ("ctag<channel>.<hex>"): consumers
        # of the original read delivery_info["consumer_tag"].
        tag = f"ctag{self._number}.{uuid.uuid4().hex}"
        arguments = _NO_ARGUMENTS + _short(queue) + _short(tag) + codec.bits(False, False, False, False)
        self._consumers[tag] = _Consumer(on_delivery, on_cancel)
        try:
            self._rpc(
                codec.method(self._number, 60, 20, arguments + codec.encode_table(None)), f"consuming from {queue!r}"
            )
        except BrokerError:
            self._consumers.pop(tag, None)
            raise
        return tag

    def cancel(self, consumer_tag: str, timeout: float = 5.0) -> None:
        """Stop deliveries; messages already on the way are rejected back to the queue."""
        if not self._open:
            return
        self.flush()
        consumer = self._consumers.pop(consumer_tag, None)
        try:
            self._rpc(
                codec.method(self._number, 60, 30, _short(consumer_tag) + codec.bits(False)),
                "cancelling a consumer",
                timeout=timeout,
            )
        except BrokerError as exc:
            log.debug("cancelling %s: %s", consumer_tag, exc)
        del consumer

    def _send(self, frames: list[Frame]) -> bool:
        if frames:
            number = self._number
            self._send_bytes(
                b"".join(
                    codec.ack(number, tag, multiple)
                    if how == "ack"
                    else (codec.nack if how == "nack" else codec.reject)(number, tag, requeue)
                    for how, tag, multiple, requeue in frames
                )
            )
        return True  # queued for the writer: once the connection is lost, the broker requeues

    def declare_exchange(self, exchange: Exchange) -> None:
        flags = codec.bits(exchange.passive, exchange.durable, exchange.auto_delete, exchange.internal, False)
        arguments = _NO_ARGUMENTS + _short(exchange.name) + _short(exchange.type) + flags
        self._rpc(
            codec.method(self._number, 40, 10, arguments + _table(exchange.arguments)),
            f"declaring exchange {exchange.name!r}",
        )

    def declare_queue(self, queue: Queue) -> None:
        self._declare(
            queue.name,
            queue.passive,
            queue.durable,
            queue.exclusive,
            queue.auto_delete,
            queue.arguments,
            f"declaring queue {queue.name!r}",
        )

    def bind(self, queue: str, binding: Binding) -> None:
        arguments = _NO_ARGUMENTS + _short(queue) + _short(binding.exchange) + _short(binding.routing_key)
        self._rpc(
            codec.method(self._number, 50, 20, arguments + codec.bits(False) + _table(binding.arguments)),
            f"binding queue {queue!r} to exchange {binding.exchange!r}",
        )

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue that must exist (a passive declaration)."""
        ok = self._declare(queue, True, False, False, False, {}, f"checking queue {queue!r}")
        return int(ok.message_count or 0)

    def _declare(
        self,
        name: str,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: Mapping[str, Any],
        what: str,
    ) -> Any:
        fields = _NO_ARGUMENTS + _short(name) + codec.bits(passive, durable, exclusive, auto_delete, False)
        return self._rpc(codec.method(self._number, 50, 10, fields + _table(arguments)), what)

    def get(self, queue: str) -> Delivery | None:
        """One message from the queue, unacknowledged (basic.get); None when it is empty."""
        what = f"reading from {queue!r}"
        result = self._rpc(codec.method(self._number, 60, 70, _NO_ARGUMENTS + _short(queue) + codec.bits(False)), what)
        return cast(Delivery | None, result)

    def enable_confirms(self) -> None:
        self._rpc(codec.method(self._number, 85, 10, codec.bits(False)), "turning on publisher confirms")

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Mapping[str, Any],
        *,
        mandatory: bool,
        timeout: float,
    ) -> None:
        """Publish one message and wait for the broker's confirm (one message in flight per channel)."""
        try:
            method = _short(exchange) + _short(routing_key)
        except codec.LongString as exc:
            raise PublishUnencodable("the exchange name or routing key is longer than 255 bytes") from exc
        try:
            encoded = codec.encode_properties(properties)
        except codec.Unencodable as exc:
            raise PublishUnencodable.of_value(exc.value) from exc
        except codec.ENCODING_ERRORS as exc:
            raise PublishUnencodable(f"cannot encode the message's properties: {exc}") from exc
        publish = codec.method(self._number, 60, 40, _NO_ARGUMENTS + method + codec.bits(mandatory, False))
        content = codec.content(self._number, encoded, bytes(body), self.connection.frame_max)
        with self._publish_lock:
            if not self._open:
                raise self._why_closed(f"publishing to {exchange!r}")
            confirm: gevent.event.AsyncResult[bool] = gevent.event.AsyncResult()
            self._confirm, self._returned = confirm, None
            self._send_bytes(publish, content)
            try:
                acked = wait(confirm, self.closed, f"publishing to {exchange!r}", timeout=timeout)
            except _NoAnswer as exc:
                raise PublishTimeout.of(exchange, timeout) from exc
            finally:
                self._confirm = None
        if not acked:
            raise PublishRefused.of(exchange, routing_key)
        if self._returned is not None:
            raise PublishReturned.of(exchange, routing_key, *self._returned)

    def close(self) -> None:
        if self._open:
            self.flush()  # acks the service gave are not lost to its own close
            self._open = False
            self._closing = True
            self._acks.forget()
            self._send_bytes(codec.method(self._number, 20, 40, codec.close_fields(200, "Normal shutdown")))

    # -- Frames from the broker, in the reader greenlet

    def on_frame(self, kind: int, payload: bytes) -> None:
        if kind == codec.METHOD:
            self._on_method(codec.method_frame(payload))
        elif kind == codec.HEADER:
            self._on_header(payload)
        elif kind == codec.BODY:
            self._on_body(payload)

    def _on_method(self, command: Any) -> None:
        if self._method is not None:
            raise codec.FrameError(f"a method frame on channel {self._number} in the middle of a message")
        kind = type(command)
        if kind is codec.Deliver or kind is codec.GetOk or kind is codec.Return:
            self._method = command
        elif kind is commands.Basic.Ack or kind is commands.Basic.Nack:
            if self._confirm is not None:
                self._confirm.set(kind is commands.Basic.Ack)
        elif kind is commands.Basic.Cancel:  # the broker cancelled a consumer
            tag = command.consumer_tag or ""
            consumer = self._consumers.pop(tag, None)
            if not command.nowait:
                self._send_bytes(codec.method(self._number, 60, 31, _short(tag)))
            if consumer is not None:
                consumer.on_cancel()
        elif kind is commands.Channel.Close:
            self._send_bytes(codec.method(self._number, 20, 41))
            # Closed from both sides at once: the number stays taken until our close is answered.
            reason = replies.channel_closed(command.reply_code or 0, command.reply_text or "")
            self._ended(reason, forget=not self._closing)
        elif kind is commands.Channel.CloseOk:
            self._ended(ConnectionLost("the channel was closed by this service"))
            self.connection.forget(self._number)
        elif kind is commands.Channel.Flow:
            self._send_bytes(codec.method(self._number, 20, 21, codec.bits(bool(command.active))))
        else:
            self._answer(command, divmod(command.index, 1 << 16))

    def _answer(self, value: Any, ids: tuple[int, int]) -> None:
        """The reply to the RPC waiting, if it is one of the replies it waits for (a late reply
        to an RPC that timed out answers nothing)."""
        reply = self._reply
        if reply is not None and ids in self._expected and not reply.ready():
            reply.set(value)
        else:
            log.debug("channel %s: a reply nobody waits for, %s", self._number, ids)

    def _on_header(self, payload: bytes) -> None:
        if self._method is None or self._body is not None:
            raise codec.FrameError(f"a content header on channel {self._number} without its method")
        self._remaining, self._properties, self._undecodable = codec.content_header(payload)
        self._body = []
        if not self._remaining:
            self._complete(b"")

    def _on_body(self, payload: bytes) -> None:
        body = self._body
        if body is None:
            raise codec.FrameError(f"a content body on channel {self._number} without its header")
        self._remaining -= len(payload)
        if self._remaining > 0:
            body.append(payload)
            return
        if self._remaining < 0:
            raise codec.FrameError(f"a content body on channel {self._number} longer than its header said")
        if body:
            body.append(payload)
            payload = b"".join(body)
        self._complete(payload)

    def _complete(self, body: bytes) -> None:
        method, self._method, self._body = self._method, None, None
        kind = type(method)
        if kind is codec.Deliver:
            self._acks.delivered(method.delivery_tag)
            consumer = self._consumers.get(method.consumer_tag)
            if consumer is None or not self._open:  # cancelled: back to the queue
                self.settle(method.delivery_tag, "reject", requeue=True)
                return
            consumer.on_delivery(Delivery(self, _Delivered(method, self._properties, body), self._undecodable))
        elif kind is codec.GetOk:
            self._acks.delivered(method.delivery_tag)
            self._answer(Delivery(self, _Delivered(method, self._properties, body), self._undecodable), (60, 71))
        elif kind is codec.Return:
            self._returned = (method.reply_code, method.reply_text)

    # -- Closing

    def connection_lost(self, reason: BrokerError) -> None:
        """The connection is over: so is this channel."""
        self._ended(reason, forget=False)

    def _ended(self, reason: BrokerError, *, forget: bool = True) -> None:
        if self.closed.ready():
            return
        self._open = False
        self._acks.forget()  # the broker requeued what they would have acked
        self.closed.set_exception(reason)
        if forget:
            self.connection.forget(self._number)
        for callback in self._on_close:
            callback(reason)

    def _why_closed(self, what: str) -> BrokerError:
        reason = self.closed.exception
        if isinstance(reason, BrokerError):
            return _prefixed(reason, what)
        return ConnectionLost(f"{what}: the channel is closed")

    def _rpc(self, frame: bytes, what: str, *, timeout: float = RPC_TIMEOUT, opening: bool = False) -> Any:
        """Send one synchronous method and wait for the broker's answer to it: the method of the
        same class numbered one above (basic.get's get-ok, or get-empty, answered None)."""
        class_id, method_id = struct.unpack_from(">HH", frame, 7)
        expected: tuple[tuple[int, int], ...] = ((class_id, method_id + 1),)
        if (class_id, method_id) == (60, 70):
            expected += ((60, 72),)
        with self._rpc_lock:
            if not (self._open or opening):
                raise self._why_closed(what)
            reply: gevent.event.AsyncResult[Any] = gevent.event.AsyncResult()
            self._reply, self._expected = reply, expected
            self._send_bytes(frame)
            try:
                answer = wait(reply, self.closed, what, timeout=timeout)
            finally:
                self._reply, self._expected = None, ()
        return None if type(answer) is commands.Basic.GetEmpty else answer


class _Delivered(FromMethod):
    """A Message over the frames as read: the delivery_info dict is built only when a consumer reads it."""

    __slots__ = ()

    def __init__(self, method: codec.Deliver | codec.GetOk, properties: dict[str, Any], body: bytes) -> None:
        self.body = body
        self._method = method
        self._properties = properties
        self._delivery_info = None

    @property
    def timestamp(self) -> int | None:
        stamp = self._properties.get("timestamp") if self._properties is not None else None
        return stamp if type(stamp) is int else None  # read with every message when metrics are on


def wait(
    result: gevent.event.AsyncResult[_T],
    closed: gevent.event.AsyncResult[Any],
    what: str,
    timeout: float = RPC_TIMEOUT,
) -> _T:
    """Wait for an answer, failing at once if the channel or connection closes meanwhile."""
    gevent.wait([result, closed], count=1, timeout=timeout)
    if result.ready():
        return cast(_T, result.get())
    if closed.ready():
        reason = closed.exception if closed.exception is not None else closed.value
        if isinstance(reason, BrokerError):
            raise _prefixed(reason, what)
        raise ConnectionLost(f"{what}: the connection closed")
    raise _NoAnswer(f"{what}: no answer from the broker within {timeout:g} s")


def _prefixed(reason: BrokerError, what: str) -> BrokerError:
    return type(reason)(f"{what}: {reason}", reply_code=reason.reply_code, reply_text=reason.reply_text)


def _short(value: str) -> bytes:
    return codec.short_string(value)


def _table(arguments: Mapping[str, Any]) -> bytes:
    return codec.encode_table(dict(arguments) or None)
