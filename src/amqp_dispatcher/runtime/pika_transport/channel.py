"""A pika channel as the transport seam's Channel: RPCs as blocking calls for greenlets.

Owns turning each of pika's callback-style channel RPCs into a call that a greenlet waits on,
failing at once if the channel or its connection closes meanwhile; settling without waiting,
with acks held back until the hub's next turn so that a run of them goes as one frame (which
frames, acks.py decides); and publishing with a confirm, one message in flight per channel, so
that a return is never mistaken for another message's. Knows nothing of pools, consumers or
retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import gevent
import gevent.event
import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec

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
from ..spec import Binding, Exchange, Queue
from ..transport import CloseCallback, Delivery, DeliveryCallback
from .frames import delivery
from .translate import ENCODING_ERRORS, describe, translate

if TYPE_CHECKING:
    from .connection import PikaConnection

log = get_logger(TRANSPORT)

RPC_TIMEOUT = 30.0

_T = TypeVar("_T")
# The broker's answer to a published message, in confirm mode.
_Confirm = pika.frame.Method[pika.spec.Basic.Ack | pika.spec.Basic.Nack]


class _NoAnswer(ConnectionLost):
    """The broker did not answer an RPC in time: the connection is as good as lost."""


class PikaChannel(HeldAcks):
    """An open channel; RPCs wait for their answer, settling never waits."""

    def __init__(self, raw: pika.channel.Channel, connection: PikaConnection) -> None:
        self._raw = raw
        self.connection = connection
        # Never gets a value: its exception is why the channel closed.
        self.closed: gevent.event.AsyncResult[None] = gevent.event.AsyncResult()
        self._on_close: list[CloseCallback] = []
        self._confirm: gevent.event.AsyncResult[_Confirm] | None = None
        self._returned: tuple[int, str] | None = None
        self._getting: gevent.event.AsyncResult[Delivery | None] | None = None
        self._hold_acks()
        raw.add_on_close_callback(self._closed_by_pika)

    @property
    def number(self) -> int:
        return int(self._raw.channel_number)

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open)

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def qos(self, prefetch_count: int) -> None:
        self._rpc(self._raw.basic_qos, "setting the prefetch", prefetch_count=prefetch_count)
        self._ack_window(prefetch_count)

    def consume(self, queue: str, on_delivery: DeliveryCallback, *, on_cancel: Callable[[], None]) -> str:
        """Start consuming; `on_delivery` runs in the hub for each message and must not block."""
        delivered = self._acks.delivered

        def deliver(
            _raw: pika.channel.Channel,
            method: pika.spec.Basic.Deliver,
            properties: pika.spec.BasicProperties,
            body: bytes,
        ) -> None:
            delivered(method.delivery_tag)
            on_delivery(delivery(self, method, properties, body))

        self._raw.add_on_cancel_callback(lambda _frame: on_cancel())
        started: gevent.event.AsyncResult[pika.frame.Method[pika.spec.Basic.ConsumeOk]] = gevent.event.AsyncResult()
        try:
            tag = self._raw.basic_consume(queue, deliver, auto_ack=False, callback=started.set)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        wait(started, self.closed, f"consuming from {queue!r}")
        return tag

    def cancel(self, consumer_tag: str, timeout: float = 5.0) -> None:
        """Stop deliveries; messages already on the way are rejected back to the queue by pika."""
        if not self.is_open:
            return
        self.flush()
        done: gevent.event.AsyncResult[pika.frame.Method[pika.spec.Basic.CancelOk]] = gevent.event.AsyncResult()
        try:
            self._raw.basic_cancel(consumer_tag, callback=done.set)
            wait(done, self.closed, "cancelling a consumer", timeout=timeout)
        except (BrokerError, pika.exceptions.AMQPError) as exc:
            log.debug("cancelling %s: %s", consumer_tag, exc)

    def _send(self, frames: list[Frame]) -> bool:
        raw = self._raw
        try:
            for how, tag, multiple, requeue in frames:
                if how == "ack":
                    raw.basic_ack(tag, multiple)
                elif how == "nack":
                    raw.basic_nack(tag, requeue=requeue)
                else:
                    raw.basic_reject(tag, requeue=requeue)
        except pika.exceptions.AMQPError:
            return False
        return True

    def declare_exchange(self, exchange: Exchange) -> None:
        self._rpc(
            self._raw.exchange_declare,
            f"declaring exchange {exchange.name!r}",
            exchange=exchange.name,
            exchange_type=exchange.type,
            passive=exchange.passive,
            durable=exchange.durable,
            auto_delete=exchange.auto_delete,
            internal=exchange.internal,
            arguments=dict(exchange.arguments) or None,
        )

    def declare_queue(self, queue: Queue) -> None:
        self._rpc(
            self._raw.queue_declare,
            f"declaring queue {queue.name!r}",
            queue=queue.name,
            passive=queue.passive,
            durable=queue.durable,
            exclusive=queue.exclusive,
            auto_delete=queue.auto_delete,
            arguments=dict(queue.arguments) or None,
        )

    def bind(self, queue: str, binding: Binding) -> None:
        self._rpc(
            self._raw.queue_bind,
            f"binding queue {queue!r} to exchange {binding.exchange!r}",
            queue=queue,
            exchange=binding.exchange,
            routing_key=binding.routing_key,
            arguments=dict(binding.arguments) or None,
        )

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue that must exist (a passive declaration)."""
        frame: pika.frame.Method[pika.spec.Queue.DeclareOk] = self._rpc(
            self._raw.queue_declare, f"checking queue {queue!r}", queue=queue, passive=True
        )
        return int(frame.method.message_count)

    def get(self, queue: str) -> Delivery | None:
        """One message from the queue, unacknowledged (basic.get); None when it is empty."""
        if self._getting is None:
            self._raw.add_callback(self._got_nothing, [pika.spec.Basic.GetEmpty], one_shot=False)
        self._getting = gevent.event.AsyncResult()

        def got(
            _raw: pika.channel.Channel,
            method: pika.spec.Basic.GetOk,
            properties: pika.spec.BasicProperties,
            body: bytes,
        ) -> None:
            assert self._getting is not None
            self._acks.delivered(method.delivery_tag)
            self._getting.set(delivery(self, method, properties, body))

        try:
            self._raw.basic_get(queue, got, auto_ack=False)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc, f"reading from {queue!r}") from exc
        return wait(self._getting, self.closed, f"reading from {queue!r}")

    def _got_nothing(self, _frame: pika.frame.Method[pika.spec.Basic.GetEmpty]) -> None:
        if self._getting is not None:
            self._getting.set(None)

    def enable_confirms(self) -> None:
        self._raw.add_on_return_callback(self._on_return)
        self._rpc(self._raw.confirm_delivery, "turning on publisher confirms", ack_nack_callback=self._on_confirm)

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
        confirm = self._expect_confirm()
        try:
            self._raw.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties), mandatory)
        except pika.exceptions.UnsupportedAMQPFieldException as exc:
            raise PublishUnencodable.of_value(exc.args[-1] if exc.args else None) from exc
        except pika.exceptions.ShortStringTooLong as exc:
            raise PublishUnencodable("the exchange name or routing key is longer than 255 bytes") from exc
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        except ENCODING_ERRORS as exc:
            # pika marshals the frames before writing any: nothing was sent, the channel is clean.
            raise PublishUnencodable(f"cannot encode the message's properties: {describe(exc)}") from exc
        try:
            frame = wait(confirm, self.closed, f"publishing to {exchange!r}", timeout=timeout)
        except _NoAnswer as exc:
            raise PublishTimeout.of(exchange, timeout) from exc
        if isinstance(frame.method, pika.spec.Basic.Nack):
            raise PublishRefused.of(exchange, routing_key)
        if self._returned is not None:
            raise PublishReturned.of(exchange, routing_key, *self._returned)

    def close(self) -> None:
        if self.is_open:
            self.flush()  # acks the service gave are not lost to its own close
            with contextlib.suppress(pika.exceptions.AMQPError):  # closing already
                self._raw.close()

    def _expect_confirm(self) -> gevent.event.AsyncResult[_Confirm]:
        """A fresh confirm for the next message, and no return yet: pika's callbacks fill them in."""
        self._confirm = gevent.event.AsyncResult()
        self._returned = None
        return self._confirm

    def _on_confirm(self, frame: _Confirm) -> None:
        if self._confirm is not None:
            self._confirm.set(frame)

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        _properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        self._returned = (method.reply_code, method.reply_text)

    def _rpc(self, method: Callable[..., None], what: str, **arguments: Any) -> Any:
        """Call one of pika's channel RPCs with `arguments`, and wait for its reply frame."""
        done: gevent.event.AsyncResult[Any] = gevent.event.AsyncResult()
        try:
            method(callback=done.set, **arguments)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc, what) from exc
        return wait(done, self.closed, what)

    def _closed_by_pika(self, _raw: pika.channel.Channel, exc: BaseException) -> None:
        reason = translate(exc)
        self._acks.forget()  # the broker requeued what they would have acked
        self.closed.set_exception(reason)
        for callback in self._on_close:
            callback(reason)


def wait(
    result: gevent.event.AsyncResult[_T],
    closed: gevent.event.AsyncResult[BrokerError] | gevent.event.AsyncResult[None],
    what: str,
    timeout: float = RPC_TIMEOUT,
) -> _T:
    """Wait for an RPC's answer, failing at once if the channel or connection closes meanwhile."""
    gevent.wait([result, closed], count=1, timeout=timeout)
    if result.ready():
        # types-gevent's get() adds None, for an AsyncResult set() without a value; ours are all
        # set with a value of their type (None only where the type holds it, as in get()).
        return cast(_T, result.get())
    if closed.ready():
        reason = closed.exception if closed.exception is not None else closed.value
        if isinstance(reason, BaseException):
            raise translate(reason, what)
        raise ConnectionLost(f"{what}: the connection closed")
    raise _NoAnswer(f"{what}: no answer from the broker within {timeout:g} s")
