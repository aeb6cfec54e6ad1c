"""Everything pika: connections and channels as blocking calls for greenlets.

The only importer of pika. pika's GeventConnection runs its callbacks inside the gevent hub,
where nothing may block; this module turns each RPC into a call that a greenlet waits on, and
hands deliveries to a callback that must only queue them. Translates pika's errors, and what
its encoders raise, into ours (errors.py), so that callers can tell what retrying can
fix. Salvages the header frame of a message whose properties pika cannot decode, so that one
message never takes a connection down. Knows nothing of pools, consumers, topology or retries.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import struct
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import gevent
import gevent.event
import pika
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.gevent_connection import GeventConnection
from pika.adapters.utils import connection_workflow

from .errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    ConnectionLost,
    DeclarationRefused,
    HandshakeRefused,
    PublishRefused,
    PublishReturned,
    PublishTimeout,
    PublishUnencodable,
)
from .logs import get_logger
from .message import PROPERTY_NAMES, Message, Undecodable
from .settings import ConnectionSettings, Endpoint
from .spec import Binding, Exchange, Queue
from .tls import build_context

log = get_logger("amqp-dispatcher.transport")

# Broker replies that retrying cannot fix, on a channel or a connection.
_ACCESS_CODES = {402, 403, 530}
_REFUSAL_CODES = {403, 404, 405, 406}
RPC_TIMEOUT = 30.0
# What pika's encoders raise on a value they cannot write (an integer beyond 64 bits, a property
# of the wrong type), and its decoders on one they cannot read (a timestamp past year 9999, a
# table nested past the recursion limit, an unknown field type).
_ENCODING_ERRORS = (struct.error, TypeError, ValueError, OverflowError, AssertionError)
_DECODING_ERRORS = (
    struct.error,
    ValueError,
    OverflowError,
    OSError,
    KeyError,
    IndexError,
    RecursionError,
    UnicodeDecodeError,
    pika.exceptions.InvalidFieldTypeException,
)

DeliveryCallback = Callable[["Delivery"], None]
CloseCallback = Callable[[BrokerError], None]


class Delivery:
    """A message together with the channel it arrived on, which alone may settle it.

    `undecodable` is set when pika could not decode the message's headers: then `message`
    holds the body and the properties that could be read, and never reaches a consumer.
    """

    __slots__ = ("channel", "message", "settled", "tag", "undecodable")

    def __init__(self, channel: Channel, message: Message, undecodable: Undecodable | None = None) -> None:
        self.channel = channel
        self.message = message
        self.tag = message.delivery_tag
        self.undecodable = undecodable
        self.settled = False  # answered by this service (or its channel gone), whoever answered it

    def ack(self) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "ack")

    def nack(self, *, requeue: bool) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "nack", requeue=requeue)

    def reject(self, *, requeue: bool) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "reject", requeue=requeue)


class Connection:
    """An open AMQP connection. Its close callbacks run in the hub and must not block."""

    def __init__(self, raw: GeventConnection, endpoint: str) -> None:
        self._raw = raw
        self.endpoint = endpoint
        self._closed = gevent.event.AsyncResult()
        self._on_close: list[CloseCallback] = []
        self._closing = False
        raw.add_on_close_callback(self._closed_by_pika)
        raw.add_on_connection_blocked_callback(
            lambda _c, _f: log.warning("the broker blocks publishing on %s", endpoint)
        )
        raw.add_on_connection_unblocked_callback(lambda _c, _f: log.info("the broker unblocked %s", endpoint))

    @classmethod
    def open(cls, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None) -> Connection:
        """Connect to the first host (in random order) that accepts; raises Recoverable or Fatal."""
        endpoints = list(settings.endpoints)
        random.shuffle(endpoints)  # a fleet spreads over the hosts instead of piling on the first
        parameters = [_parameters(settings, endpoint, name, blocked_timeout) for endpoint in endpoints]
        outcome = gevent.event.AsyncResult()
        workflow = _TolerantConnection.create_connection(parameters, on_done=outcome.set)
        try:
            result = outcome.get(timeout=settings.connection_timeout * len(endpoints) + 5)
        except gevent.Timeout as exc:
            with contextlib.suppress(connection_workflow.AMQPConnectorException):
                workflow.abort()  # or it could still connect, and nobody would close it
            raise BrokerUnreachable(f"no answer from {settings.describe()} in time") from exc
        if isinstance(result, BaseException):
            raise _connect_error(result, settings) from result
        return cls(result, _endpoint_of(result))

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open) and not self._closing

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def wait_closed(self, timeout: float | None = None) -> BrokerError | None:
        """Block until the connection closes; returns why (None if this side closed it)."""
        try:
            reason: BrokerError | None = self._closed.get(timeout=timeout)
        except gevent.Timeout:
            return None
        return reason

    def channel(self) -> Channel:
        opened = gevent.event.AsyncResult()
        try:
            self._raw.channel(on_open_callback=opened.set)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        raw = _wait(opened, self._closed, "opening a channel")
        return Channel(raw, self)

    def close(self, timeout: float = 10.0) -> None:
        """Close and wait for the broker's close-ok; unacknowledged messages go back to their queues."""
        if self._raw.is_closed:
            return
        self._closing = True
        if not self._raw.is_closing:
            with contextlib.suppress(pika.exceptions.AMQPError):  # closing already
                self._raw.close()
        self._closed.wait(timeout=timeout)

    def _closed_by_pika(self, _raw: Any, exc: BaseException) -> None:
        reason = None if isinstance(exc, pika.exceptions.ConnectionClosedByClient) else translate(exc)
        self._closed.set(reason)
        for callback in self._on_close:
            callback(reason or ConnectionLost("closed by this service"))


class _NoAnswer(ConnectionLost):
    """The broker did not answer an RPC in time: the connection is as good as lost."""


class Channel:
    """An open channel; RPCs wait for their answer, settling never waits."""

    def __init__(self, raw: Any, connection: Connection) -> None:
        self._raw = raw
        self.connection = connection
        self.closed = gevent.event.AsyncResult()
        self._on_close: list[CloseCallback] = []
        self._confirm: gevent.event.AsyncResult | None = None
        self._returned: Any = None
        self._getting: gevent.event.AsyncResult | None = None
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

    def consume(self, queue: str, on_delivery: DeliveryCallback, *, on_cancel: Callable[[], None]) -> str:
        """Start consuming; `on_delivery` runs in the hub for each message and must not block."""

        def deliver(_raw: Any, method: Any, properties: Any, body: bytes) -> None:
            on_delivery(_delivery(self, method, properties, body))

        self._raw.add_on_cancel_callback(lambda _frame: on_cancel())
        started = gevent.event.AsyncResult()
        try:
            tag: str = self._raw.basic_consume(queue, deliver, auto_ack=False, callback=started.set)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        _wait(started, self.closed, f"consuming from {queue!r}")
        return tag

    def cancel(self, consumer_tag: str, timeout: float = 5.0) -> None:
        """Stop deliveries; messages already on the way are rejected back to the queue by pika."""
        if not self.is_open:
            return
        done = gevent.event.AsyncResult()
        try:
            self._raw.basic_cancel(consumer_tag, callback=done.set)
            _wait(done, self.closed, "cancelling a consumer", timeout=timeout)
        except (BrokerError, pika.exceptions.AMQPError) as exc:
            log.debug("cancelling %s: %s", consumer_tag, exc)

    def settle(self, delivery_tag: int, how: str, *, requeue: bool = False) -> bool:
        """ack, nack or reject on this channel; False, sending nothing, if the channel has closed."""
        raw = self._raw  # on every message: one lookup, not a property chain
        if not raw.is_open:
            return False
        try:
            if how == "ack":
                raw.basic_ack(delivery_tag)
            elif how == "nack":
                raw.basic_nack(delivery_tag, requeue=requeue)
            else:
                raw.basic_reject(delivery_tag, requeue=requeue)
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
        frame = self._rpc(self._raw.queue_declare, f"checking queue {queue!r}", queue=queue, passive=True)
        return int(frame.method.message_count)

    def get(self, queue: str) -> Delivery | None:
        """One message from the queue, unacknowledged (basic.get); None when it is empty."""
        if self._getting is None:
            self._raw.add_callback(self._got_nothing, [pika.spec.Basic.GetEmpty], one_shot=False)
        self._getting = gevent.event.AsyncResult()

        def got(_raw: Any, method: Any, properties: Any, body: bytes) -> None:
            assert self._getting is not None
            self._getting.set(_delivery(self, method, properties, body))

        try:
            self._raw.basic_get(queue, got, auto_ack=False)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc, f"reading from {queue!r}") from exc
        delivery: Delivery | None = _wait(self._getting, self.closed, f"reading from {queue!r}")
        return delivery

    def _got_nothing(self, _frame: Any) -> None:
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
        self._confirm = gevent.event.AsyncResult()
        self._returned = None
        try:
            self._raw.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties), mandatory)
        except pika.exceptions.UnsupportedAMQPFieldException as exc:
            value = exc.args[-1] if exc.args else None
            raise PublishUnencodable(
                f"cannot send {value!r} ({type(value).__name__}) in a header: AMQP tables carry text, bytes, "
                "integers, booleans, Decimal, datetime, lists and dicts, not floats"
            ) from exc
        except pika.exceptions.ShortStringTooLong as exc:
            raise PublishUnencodable("the exchange name or routing key is longer than 255 bytes") from exc
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        except _ENCODING_ERRORS as exc:
            # pika marshals the frames before writing any: nothing was sent, the channel is clean.
            raise PublishUnencodable(f"cannot encode the message's properties: {_describe(exc)}") from exc
        try:
            frame = _wait(self._confirm, self.closed, f"publishing to {exchange!r}", timeout=timeout)
        except _NoAnswer as exc:
            raise PublishTimeout(f"no confirm from the broker within {timeout:g} s for {exchange!r}") from exc
        if isinstance(frame.method, pika.spec.Basic.Nack):
            raise PublishRefused(f"the broker refused the message published to {exchange!r} {routing_key!r}")
        if self._returned is not None:
            code, text = self._returned
            raise PublishReturned(
                f"the broker returned the message published to {exchange!r} with routing key {routing_key!r}: "
                f"{code} {text} (no queue is bound to receive it)",
                reply_code=code,
                reply_text=text,
            )

    def close(self) -> None:
        if self.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):  # closing already
                self._raw.close()

    def _on_confirm(self, frame: Any) -> None:
        if self._confirm is not None:
            self._confirm.set(frame)

    def _on_return(self, _channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        self._returned = (method.reply_code, method.reply_text)

    def _rpc(self, method: Callable[..., Any], what: str, **arguments: Any) -> Any:
        done = gevent.event.AsyncResult()
        try:
            method(callback=done.set, **arguments)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc, what) from exc
        return _wait(done, self.closed, what)

    def _closed_by_pika(self, _raw: Any, exc: BaseException) -> None:
        reason = translate(exc)
        self.closed.set_exception(reason)
        for callback in self._on_close:
            callback(reason)


def translate(exc: BaseException, what: str = "") -> BrokerError:
    """Our error for a pika error: Fatal for refusals, Recoverable for lost connections."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, BrokerError):
        if not what:
            return exc
        return type(exc)(f"{prefix}{exc}", reply_code=exc.reply_code, reply_text=exc.reply_text)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker):
        code, text = exc.reply_code, exc.reply_text
        message = f"{prefix}{code} {text}"
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and code in _REFUSAL_CODES:
            return DeclarationRefused(message, reply_code=code, reply_text=text)
        if isinstance(exc, pika.exceptions.ConnectionClosedByBroker) and code in _ACCESS_CODES:
            return AccessRefused(message, reply_code=code, reply_text=text)
        return ConnectionLost(message, reply_code=code, reply_text=text)
    if isinstance(exc, pika.exceptions.ChannelClosedByClient):
        return ConnectionLost(f"{prefix}the channel was closed by this service")
    return ConnectionLost(f"{prefix}{_describe(exc)}")


def _connect_error(exc: BaseException, settings: ConnectionSettings) -> BrokerError:
    """Refusals (credentials, vhost, certificates) are fatal; anything else is worth retrying."""
    causes = list(getattr(exc, "exceptions", ())) or [exc]
    for cause in causes:
        inner = getattr(cause, "exception", cause)
        where = settings.describe()
        if isinstance(inner, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError):
            return AccessRefused(f"{where}: the broker refused the credentials of user {settings.username!r}")
        if isinstance(inner, pika.exceptions.ProbableAccessDeniedError):
            return AccessRefused(
                f"{where}: the broker refused access to vhost {settings.vhost!r} "
                "(it does not exist, or the user has no permission on it)"
            )
        if isinstance(inner, pika.exceptions.ConnectionClosedByBroker) and inner.reply_code in _ACCESS_CODES:
            return AccessRefused(f"{where}: {inner.reply_code} {inner.reply_text}")
        if isinstance(inner, ssl.SSLCertVerificationError):
            return HandshakeRefused(
                f"{where}: the broker's TLS certificate failed verification: {inner.verify_message}"
            )
        if isinstance(inner, ssl.SSLError) and not isinstance(inner, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            # A protocol mismatch, such as amqps:// against a plain AMQP port: the same on every try.
            return HandshakeRefused(
                f"{where}: the TLS handshake failed ({inner.reason or inner}); is the port a TLS port "
                "(5671 by default), and does the broker accept this TLS version?"
            )
    last = causes[-1]
    return BrokerUnreachable(f"cannot connect to {settings.describe()}: {_describe(getattr(last, 'exception', last))}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, connection_workflow.AMQPConnectorStackTimeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _wait(
    result: gevent.event.AsyncResult, closed: gevent.event.AsyncResult, what: str, timeout: float = RPC_TIMEOUT
) -> Any:
    """Wait for an RPC's answer, failing at once if the channel or connection closes meanwhile."""
    gevent.wait([result, closed], count=1, timeout=timeout)
    if result.ready():
        return result.get()
    if closed.ready():
        reason = closed.exception if closed.exception is not None else closed.value
        if isinstance(reason, BaseException):
            raise translate(reason, what)
        raise ConnectionLost(f"{what}: the connection closed")
    raise _NoAnswer(f"{what}: no answer from the broker within {timeout:g} s")


def _parameters(
    settings: ConnectionSettings, endpoint: Endpoint, name: str, blocked_timeout: float | None
) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=endpoint.host,
        port=endpoint.port,
        virtual_host=settings.vhost,
        credentials=pika.PlainCredentials(settings.username, settings.password, erase_on_connect=False),
        heartbeat=settings.heartbeat,
        connection_attempts=1,
        socket_timeout=settings.connection_timeout,
        stack_timeout=settings.connection_timeout,
        blocked_connection_timeout=blocked_timeout,
        client_properties={"connection_name": name},
        ssl_options=_ssl_options(settings, endpoint),
    )


def _ssl_options(settings: ConnectionSettings, endpoint: Endpoint) -> pika.SSLOptions | None:
    tls = settings.tls
    if tls is None:
        return None
    context = tls.context if tls.context is not None else build_context(tls)
    return pika.SSLOptions(context, server_hostname=tls.server_hostname or endpoint.host)


def _endpoint_of(raw: GeventConnection) -> str:
    parameters = raw.params
    return f"{parameters.host}:{parameters.port}"


class _DeliveredMessage(Message):
    """A Message over pika's frames, which builds its dicts only when a consumer reads them.

    Most consumers read the body and perhaps the headers; building the property and
    delivery_info dicts for every message would be work on the hot path for nothing.
    """

    __slots__ = ("_method", "_raw")

    def __init__(self, method: Any, properties: Any, body: bytes) -> None:
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


def _delivery(channel: Channel, method: Any, properties: Any, body: bytes) -> Delivery:
    undecodable = properties.undecodable if type(properties) is _SalvagedProperties else None
    return Delivery(channel, _message(method, properties, body), undecodable)


class _TolerantConnection(GeventConnection):  # type: ignore[misc]
    """pika's GeventConnection, except that one message pika cannot decode does not end the connection.

    pika decodes a message's header frame inside its frame loop; a value it cannot represent (a
    timestamp beyond the platform's range, a table nested past the recursion limit, a NaN double,
    an unknown field type) raises there and drops the connection that every consumer shares,
    and the broker then redelivers the same message, forever. Here such a frame becomes a header
    with the properties that could be read and the reason, so the message arrives on its own and
    the pool settles it (see policy.settle_undecodable).
    """

    def _read_frame(self) -> tuple[int, Any]:
        return decode_frame(self._frame_buffer)


def decode_frame(buffer: bytes) -> tuple[int, Any]:
    """pika's decode_frame, except that a header frame whose properties fail to decode is salvaged."""
    try:
        return pika.frame.decode_frame(buffer)  # type: ignore[no-any-return]
    except _DECODING_ERRORS as error:
        return _salvaged_header(buffer, error)


class _SalvagedProperties(pika.BasicProperties):  # type: ignore[misc]
    """The properties of a message whose headers could not be decoded, with the reason."""

    def __init__(self, undecodable: Undecodable) -> None:
        super().__init__()
        self.undecodable = undecodable


def _salvaged_header(buffer: bytes, error: Exception) -> tuple[int, Any]:
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


def _without_headers(encoded: bytes) -> tuple[Any, bytes]:
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
    except _DECODING_ERRORS:  # the table's length was wrong too: keep only the reason
        return pika.BasicProperties(), table


def _message(method: Any, properties: Any, body: bytes) -> Message:
    """Our Message from pika's frames: bytes body, unset properties left out."""
    return _DeliveredMessage(method, properties, body)


def encode_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Publish properties as pika takes them: expiration as text, timestamp as seconds."""
    encoded = dict(properties)
    if "expiration" in encoded and encoded["expiration"] is not None:
        encoded["expiration"] = str(encoded["expiration"])
    stamp = encoded.get("timestamp")
    if isinstance(stamp, datetime):
        aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        encoded["timestamp"] = int(aware.timestamp())
    return encoded
