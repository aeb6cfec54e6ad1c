"""A pika GeventConnection as the transport seam's Connection.

Owns opening a connection (hosts in random order, TLS, the connection's name), its close and
blocked callbacks, and the GeventConnection subclass whose frame reader salvages what pika
cannot decode (frames.py). Knows nothing of pools, topology or reconnecting.
"""

from __future__ import annotations

import contextlib
import random
import weakref

import gevent
import gevent.event
import pika
import pika.channel
import pika.connection
import pika.exceptions
import pika.frame
from pika.adapters.gevent_connection import GeventConnection
from pika.adapters.utils import connection_workflow

from ..errors import BrokerError, BrokerUnreachable, ConnectionLost
from ..settings import ConnectionSettings, Endpoint
from ..tls import build_context
from ..transport import BlockedCallback, CloseCallback, report_blocked
from .channel import PikaChannel, wait
from .frames import decode_frame
from .translate import connect_error, translate


class PikaConnection:
    """An open AMQP connection. Its close callbacks run in the hub and must not block."""

    def __init__(self, raw: pika.connection.Connection, endpoint: str) -> None:
        self._raw = raw
        self.endpoint = endpoint
        self._closed: gevent.event.AsyncResult[BrokerError] = gevent.event.AsyncResult()  # None: closed by us
        self._on_close: list[CloseCallback] = []
        self._on_blocked: list[BlockedCallback] = []
        self._closing = False
        self._channels: weakref.WeakSet[PikaChannel] = weakref.WeakSet()  # to flush their acks on close
        raw.add_on_close_callback(self._closed_by_pika)
        raw.add_on_connection_blocked_callback(lambda _c, _f: self._blocked(True))
        raw.add_on_connection_unblocked_callback(lambda _c, _f: self._blocked(False))

    @classmethod
    def open(cls, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None) -> PikaConnection:
        """Connect to the first host (in random order) that accepts; raises Recoverable or Fatal."""
        endpoints = list(settings.endpoints)
        random.shuffle(endpoints)  # a fleet spreads over the hosts instead of piling on the first
        parameters = [_parameters(settings, endpoint, name, blocked_timeout) for endpoint in endpoints]
        outcome: gevent.event.AsyncResult[pika.connection.Connection | connection_workflow.AMQPConnectorException]
        outcome = gevent.event.AsyncResult()
        workflow = _TolerantConnection.create_connection(parameters, on_done=outcome.set)
        try:
            result = outcome.get(timeout=settings.connection_timeout * len(endpoints) + 5)
        except gevent.Timeout as exc:
            with contextlib.suppress(connection_workflow.AMQPConnectorException):
                workflow.abort()  # or it could still connect, and nobody would close it
            raise BrokerUnreachable(f"no answer from {settings.describe()} in time") from exc
        if isinstance(result, BaseException):
            raise connect_error(result, settings) from result
        assert result is not None  # on_done passes the connection or why there is none
        return cls(result, _endpoint_of(result))

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open) and not self._closing

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def add_blocked_callback(self, callback: BlockedCallback) -> None:
        self._on_blocked.append(callback)

    def wait_closed(self, timeout: float | None = None) -> BrokerError | None:
        """Block until the connection closes; returns why (None if this side closed it)."""
        try:
            reason: BrokerError | None = self._closed.get(timeout=timeout)
        except gevent.Timeout:
            return None
        return reason

    def channel(self) -> PikaChannel:
        opened: gevent.event.AsyncResult[pika.channel.Channel] = gevent.event.AsyncResult()
        try:
            self._raw.channel(on_open_callback=opened.set)
        except pika.exceptions.AMQPError as exc:
            raise translate(exc) from exc
        raw = wait(opened, self._closed, "opening a channel")
        channel = PikaChannel(raw, self)
        self._channels.add(channel)
        return channel

    def close(self, timeout: float = 10.0) -> None:
        """Close and wait for the broker's close-ok; unacknowledged messages go back to their queues."""
        if self._raw.is_closed:
            return
        self._closing = True
        for channel in list(self._channels):
            channel.flush()  # before pika closes the channels: acks the service gave are sent
        if not self._raw.is_closing:
            with contextlib.suppress(pika.exceptions.AMQPError):  # closing already
                self._raw.close()
        self._closed.wait(timeout=timeout)

    def _blocked(self, blocked: bool) -> None:
        report_blocked(self.endpoint, blocked)
        for callback in self._on_blocked:
            callback(blocked)

    def _closed_by_pika(self, _raw: pika.connection.Connection, exc: BaseException) -> None:
        reason = None if isinstance(exc, pika.exceptions.ConnectionClosedByClient) else translate(exc)
        self._closed.set(reason)
        for callback in self._on_close:
            callback(reason or ConnectionLost("closed by this service"))


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


def _endpoint_of(raw: pika.connection.Connection) -> str:
    parameters = raw.params
    return f"{parameters.host}:{parameters.port}"


class _TolerantConnection(GeventConnection):
    """pika's GeventConnection, except that one message pika cannot decode does not end the connection.

    pika decodes a message's header frame inside its frame loop; a value it cannot represent (a
    timestamp beyond the platform's range, a table nested past the recursion limit, a NaN double,
    an unknown field type) raises there and drops the connection that every consumer shares,
    and the broker then redelivers the same message, forever. Here such a frame becomes a header
    with the properties that could be read and the reason, so the message arrives on its own and
    the pool settles it (see policy.settle_undecodable).
    """

    def _read_frame(self) -> tuple[int, pika.frame.Frame | pika.frame.ProtocolHeader | None]:
        return decode_frame(self._frame_buffer)
