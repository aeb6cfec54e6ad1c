"""An AMQP 0-9-1 connection on a gevent socket: the pamqp transport's Connection.

Owns opening a connection (hosts in random order, TCP or TLS with verification, the
handshake: PLAIN credentials, tuning, the vhost), and then three greenlets: a reader that
reads in large chunks and hands each frame to its channel, a writer that sends everything
queued in one write (so a settle from the hub never blocks, and a large body waits on the
socket, not in memory), and a heartbeat keeper that sends heartbeats when the connection is
quiet and closes it when the broker has been silent for two intervals. Also
connection.blocked (with a time limit, as pika's blocked_connection_timeout), the broker's
connection.close, and this side's close. Knows nothing of pools, topology or reconnecting.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.socket
import gevent.ssl
from pamqp import commands

from .. import replies
from ..errors import AccessRefused, BrokerError, BrokerUnreachable, ConnectionLost, Fatal
from ..logs import TRANSPORT, get_logger
from ..settings import ConnectionSettings, Endpoint
from ..tls import build_context
from ..transport import BlockedCallback, CloseCallback, report_blocked
from ..version import VERSION
from . import codec
from .channel import PamqpChannel

if TYPE_CHECKING:
    from ..tls import TlsSettings

log = get_logger(TRANSPORT)

READ_SIZE = 256 * 1024
LARGE = 64 * 1024  # bytes queued for the writer that it sends on their own rather than join
FRAME_MAX = 131072  # the most this side asks for, as pika does
CHANNEL_MAX = 2047  # RabbitMQ's default limit
CLOSE_TIMEOUT = 10.0


class _Handshake(Exception):
    """The broker ended the handshake: its close, or the socket closing at a given step."""

    def __init__(self, step: str, code: int | None = None, text: str = "") -> None:
        super().__init__(step)
        self.step, self.code, self.text = step, code, text


class PamqpConnection:
    """An open AMQP connection. Its close callbacks run in the reader greenlet and must not block."""

    def __init__(
        self,
        sock: Any,
        endpoint: str,
        *,
        frame_max: int,
        channel_max: int,
        heartbeat: int,
        blocked_timeout: float | None,
        leftover: bytes,
    ) -> None:
        self._sock = sock
        self.endpoint = endpoint
        self.frame_max = frame_max
        self._channel_max = channel_max
        self._heartbeat = heartbeat
        self._blocked_timeout = blocked_timeout
        self._closed: gevent.event.AsyncResult[BrokerError | None] = gevent.event.AsyncResult()
        self._on_close: list[CloseCallback] = []
        self._on_blocked: list[BlockedCallback] = []
        self._channels: dict[int, PamqpChannel] = {}
        self._closing = False  # this side sent connection.close
        self._ended = False  # the connection is over, or being torn down
        self._outgoing: list[bytes] = []
        self._wake_writer = gevent.event.Event()
        self._blocked_timer: gevent.Greenlet[[], None] | None = None
        self.last_read = self.last_write = time.monotonic()
        self._reader = gevent.spawn(self._read, leftover)
        self._writer = gevent.spawn(self._write)
        self._keeper = gevent.spawn(self._keep_alive) if heartbeat else None

    @classmethod
    def open(cls, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None) -> PamqpConnection:
        """Connect to the first host (in random order) that accepts; raises Recoverable or Fatal."""
        endpoints = list(settings.endpoints)
        random.shuffle(endpoints)  # a fleet spreads over the hosts instead of piling on the first
        failures: list[str] = []
        for endpoint in endpoints:
            try:
                return _open_one(cls, settings, endpoint, name, blocked_timeout)
            except Fatal:
                raise  # the same credentials and certificates on every host
            except BrokerError as exc:
                failures.append(str(exc))
        raise BrokerUnreachable(f"cannot connect to {settings.describe()}: {failures[-1]}")

    @property
    def is_open(self) -> bool:
        return not self._ended and not self._closing

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def add_blocked_callback(self, callback: BlockedCallback) -> None:
        self._on_blocked.append(callback)

    def wait_closed(self, timeout: float | None = None) -> BrokerError | None:
        """Block until the connection closes; returns why (None if this side closed it)."""
        try:
            return self._closed.get(timeout=timeout)
        except gevent.Timeout:
            return None

    def channel(self) -> PamqpChannel:
        if not self.is_open:
            raise ConnectionLost("opening a channel: the connection is closed")
        number = next((n for n in range(1, self._channel_max + 1) if n not in self._channels), None)
        if number is None:
            raise ConnectionLost(f"opening a channel: all {self._channel_max} channels are in use")
        channel = PamqpChannel(number, self)
        self._channels[number] = channel
        channel.open()
        return channel

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close and wait for the broker's close-ok; unacknowledged messages go back to their queues."""
        if self._ended or self._closing:
            self._closed.wait(timeout=timeout)
            return
        for channel in list(self._channels.values()):
            channel.flush()  # acks the service gave are sent before the close
        self._closing = True
        self.send(codec.method(0, 10, 50, codec.close_fields(200, "Normal shutdown")))
        self._closed.wait(timeout=timeout)
        if not self._closed.ready():
            self._lost(None)

    # -- Writing

    def send(self, *data: bytes) -> None:
        """Queue bytes for the writer, in order and together; never blocks, so the hub may call it."""
        if self._ended:
            return  # the socket is gone: nothing more goes out
        self._outgoing.extend(data)
        self._wake_writer.set()

    def _write(self) -> None:
        outgoing, wake, sendall = self._outgoing, self._wake_writer, self._sock.sendall
        try:
            while True:
                wake.wait()
                wake.clear()
                while outgoing:
                    batch = outgoing[:]
                    outgoing.clear()
                    small: list[bytes] = []
                    for data in batch:  # small frames in one write; a large body as it is, not copied again
                        if len(data) < LARGE:
                            small.append(data)
                            continue
                        if small:
                            sendall(b"".join(small))
                            small = []
                        sendall(data)
                    if small:
                        sendall(small[0] if len(small) == 1 else b"".join(small))
                    self.last_write = time.monotonic()
        except OSError as exc:
            self._lost(ConnectionLost(f"writing to {self.endpoint}: {_describe(exc)}"))
        except Exception as exc:  # gevent's SSL socket refusing a read and a write at once, say
            log.exception("writing to %s failed; closing the connection", self.endpoint)
            self._lost(ConnectionLost(f"writing to {self.endpoint} failed: {type(exc).__name__}: {exc}"))

    # -- Reading

    def _read(self, buffer: bytes) -> None:
        try:
            self._read_frames(buffer)
        except (_Malformed, codec.FrameError) as exc:
            self._lost(None if self._closing else ConnectionLost(f"{self.endpoint}: {exc}"))
        except OSError as exc:
            self._lost(None if self._closing else ConnectionLost(f"reading from {self.endpoint}: {_describe(exc)}"))
        except Exception as exc:  # a defect in a callback: the connection ends, and the broker requeues
            log.exception("handling a frame from %s failed; closing the connection", self.endpoint)
            self._lost(ConnectionLost(f"handling a frame from {self.endpoint} failed: {type(exc).__name__}: {exc}"))

    def _read_frames(self, buffer: bytes) -> None:
        """Read in large chunks and hand every whole frame to its channel, until the socket ends."""
        data = bytearray(buffer)
        recv, head, channels, limit = self._sock.recv, codec.HEAD, self._channels, self.frame_max
        while True:
            offset, size = 0, len(data)
            view = memoryview(data)
            try:
                while size - offset >= 7:
                    kind, number, length = head.unpack_from(data, offset)
                    if length + 8 > limit:  # frame_max counts the frame's head and end
                        raise _Malformed(f"a frame of {length + 8} bytes, above the {limit} agreed")
                    end = offset + 7 + length
                    if end >= size:
                        break
                    if data[end] != codec.FRAME_END:
                        raise _Malformed("a frame that does not end with 0xCE")
                    payload = view[offset + 7 : end].tobytes()
                    offset = end + 1
                    if number == 0:
                        self._on_connection_frame(kind, payload)
                    else:
                        channel = channels.get(number)
                        if channel is not None:
                            channel.on_frame(kind, payload)
            finally:
                view.release()
            if offset:
                del data[:offset]
            chunk = recv(READ_SIZE)
            if not chunk:
                raise _Malformed("the broker closed the connection")
            self.last_read = time.monotonic()
            data += chunk

    def _on_connection_frame(self, kind: int, payload: bytes) -> None:
        if kind == codec.HEARTBEAT:
            return
        if kind != codec.METHOD:
            raise _Malformed("a content frame on channel 0")
        command = codec.method_frame(payload)
        if isinstance(command, commands.Connection.Close):
            self.send(codec.method(0, 10, 51))
            self._lost(replies.connection_closed(command.reply_code or 0, command.reply_text or ""), flush=True)
        elif isinstance(command, commands.Connection.CloseOk):
            self._lost(None)
        elif isinstance(command, commands.Connection.Blocked):
            self._blocked(True)
        elif isinstance(command, commands.Connection.Unblocked):
            self._blocked(False)

    def _blocked(self, blocked: bool) -> None:
        report_blocked(self.endpoint, blocked)
        if not blocked and self._blocked_timer is not None:
            self._blocked_timer.kill(block=False)
            self._blocked_timer = None
        if blocked and self._blocked_timeout and self._blocked_timer is None:  # a second block keeps the deadline
            self._blocked_timer = gevent.spawn_later(self._blocked_timeout, self._blocked_too_long)
        for callback in self._on_blocked:
            callback(blocked)

    def _blocked_too_long(self) -> None:
        self._blocked_timer = None
        self._lost(ConnectionLost(f"the broker blocked {self.endpoint} for more than {self._blocked_timeout:g} s"))

    def _keep_alive(self) -> None:
        interval = self._heartbeat
        while not self._ended:
            gevent.sleep(interval / 2)
            now = time.monotonic()
            if now - self.last_read > 2 * interval:
                # After a handler blocked the hub, the broker's frames may be waiting unread:
                # one turn of the hub's I/O first, so that they count.
                gevent.sleep(0.05)
                if time.monotonic() - self.last_read > 2 * interval + 0.05:
                    self._lost(ConnectionLost(f"no heartbeat from {self.endpoint} in {2 * interval} s"))
                    return
            if now - self.last_write >= interval / 2:
                self.send(codec.HEARTBEAT_FRAME)

    # -- Closing

    def forget(self, number: int) -> None:
        """A channel is closed on both sides: its number may be used again."""
        self._channels.pop(number, None)

    def _lost(self, reason: BrokerError | None, *, flush: bool = False) -> None:
        """The connection is over: `reason` is why, or None when this side closed it. With
        `flush`, what is queued (the close-ok answering the broker's close) is written first."""
        if self._ended:
            return
        self._ended = True
        try:
            self._tear_down(flush)
            why = reason or ConnectionLost("closed by this service")
            channels, self._channels = list(self._channels.values()), {}
            for channel in channels:
                _call(channel.connection_lost, why)
            for callback in self._on_close:
                _call(callback, why)
        finally:
            self._closed.set(reason)  # last: whoever waits for it sees every callback done

    def _tear_down(self, flush: bool) -> None:
        current = gevent.getcurrent()
        if self._writer is not current:
            self._writer.kill(timeout=1)  # dead before anything else is written to the socket
        if flush and self._outgoing:
            with contextlib.suppress(OSError, gevent.Timeout), gevent.Timeout(1):
                self._sock.sendall(b"".join(self._outgoing))
        with contextlib.suppress(OSError):
            self._sock.close()
        for greenlet in (self._reader, self._keeper, self._blocked_timer):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)


def _call(callback: Callable[[BrokerError], None], why: BrokerError) -> None:
    """A close callback, whose failure is logged and stops neither the others nor the close."""
    try:
        callback(why)
    except Exception:
        log.exception("a close callback failed: %r", callback)


class _Malformed(Exception):
    """The broker sent what AMQP does not allow, or closed the socket: the connection is over."""


def _open_one(
    cls: type[PamqpConnection],
    settings: ConnectionSettings,
    endpoint: Endpoint,
    name: str,
    blocked_timeout: float | None,
) -> PamqpConnection:
    where = settings.describe()
    timeout = settings.connection_timeout
    try:
        sock = gevent.socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except OSError as exc:
        raise BrokerUnreachable(f"{endpoint}: {_describe(exc)}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if settings.tls is not None:
            sock = _wrap(sock, settings.tls, endpoint)
        handshake = _Handshaker(sock, timeout)
        tuned = handshake.run(settings, name)
    except _Handshake as exc:
        sock.close()
        raise _refusal(exc, settings) from None
    except OSError as exc:
        sock.close()
        refused = replies.tls_refused(exc, where)
        if refused is not None:
            raise refused from None
        raise BrokerUnreachable(f"{endpoint}: {_describe(exc)}") from exc
    except gevent.Timeout:
        sock.close()
        raise BrokerUnreachable(f"{endpoint}: no answer to the AMQP handshake in {timeout:g} s") from None
    sock.settimeout(None)
    frame_max, channel_max, heartbeat = tuned
    return cls(
        sock,
        str(endpoint),
        frame_max=frame_max,
        channel_max=channel_max,
        heartbeat=heartbeat,
        blocked_timeout=blocked_timeout,
        leftover=handshake.leftover,
    )


def _wrap(sock: Any, tls: TlsSettings, endpoint: Endpoint) -> Any:
    context = tls.context if tls.context is not None else build_context(tls)
    # gevent's SSLSocket over the context the settings built (a standard library one, which
    # pika takes too): its handshake and reads wait on the hub instead of blocking the process.
    return gevent.ssl.SSLSocket(sock=sock, server_hostname=tls.server_hostname or endpoint.host, _context=context)


def _refusal(exc: _Handshake, settings: ConnectionSettings) -> BrokerError:
    where = settings.describe()
    if exc.step == "credentials" and (exc.code is None or exc.code in replies.ACCESS_CODES):
        return AccessRefused(f"{where}: the broker refused the credentials of user {settings.username!r}")
    if exc.step == "vhost" and (exc.code is None or exc.code in replies.ACCESS_CODES):
        return AccessRefused(
            f"{where}: the broker refused access to vhost {settings.vhost!r} "
            "(it does not exist, or the user has no permission on it)"
        )
    if exc.step == "mechanism":
        return AccessRefused(f"{where}: {exc.text}")
    if exc.code is not None:
        return replies.connection_closed(exc.code, exc.text, where)
    return BrokerUnreachable(f"{where}: the broker closed the connection during the AMQP handshake ({exc.step})")


class _Handshaker:
    """The AMQP handshake on a socket, read frame by frame within a deadline."""

    def __init__(self, sock: Any, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        self.leftover = b""

    def run(self, settings: ConnectionSettings, name: str) -> tuple[int, int, int]:
        """Start, tune, open; the frame size, channel limit and heartbeat agreed."""
        with gevent.Timeout(self._timeout):
            self._sock.sendall(codec.PROTOCOL_HEADER)
            start = self._expect(commands.Connection.Start, "protocol")
            if "PLAIN" not in (start.mechanisms or "").split():  # pamqp reads the long string as text
                raise _Handshake(
                    "mechanism", 504, f"the broker does not offer PLAIN authentication ({start.mechanisms})"
                )
            response = b"\x00" + settings.username.encode() + b"\x00" + settings.password.encode()
            self._sock.sendall(
                codec.method(
                    0,
                    10,
                    11,
                    codec.encode_table(_client_properties(name))
                    + codec.short_string("PLAIN")
                    + len(response).to_bytes(4, "big")
                    + response
                    + codec.short_string("en_US"),
                )
            )
            tune = self._expect(commands.Connection.Tune, "credentials")
            frame_max = min(tune.frame_max or FRAME_MAX, FRAME_MAX)
            channel_max = min(tune.channel_max or CHANNEL_MAX, CHANNEL_MAX)
            heartbeat = settings.heartbeat
            self._sock.sendall(
                codec.method(
                    0,
                    10,
                    31,
                    channel_max.to_bytes(2, "big") + frame_max.to_bytes(4, "big") + heartbeat.to_bytes(2, "big"),
                )
                + codec.method(0, 10, 40, codec.short_string(settings.vhost) + b"\x00\x00")
            )
            self._expect(commands.Connection.OpenOk, "vhost")
        return frame_max, channel_max, heartbeat

    def _expect(self, kind: type[Any], step: str) -> Any:
        while True:
            frame_kind, number, payload = self._frame(step)
            if frame_kind == codec.HEARTBEAT:
                continue
            if frame_kind != codec.METHOD or number != 0:
                raise _Handshake(step, 505, "an unexpected frame during the handshake")
            command = codec.method_frame(payload)
            if isinstance(command, commands.Connection.Close):
                with contextlib.suppress(OSError):
                    self._sock.sendall(codec.method(0, 10, 51))
                raise _Handshake(step, command.reply_code, command.reply_text or "")
            if isinstance(command, kind):
                return command

    def _frame(self, step: str) -> tuple[int, int, bytes]:
        data = self.leftover
        while True:
            if len(data) >= 7:
                kind, number, length = codec.HEAD.unpack_from(data)
                if len(data) >= 8 + length:
                    self.leftover = data[8 + length :]
                    return kind, number, data[7 : 7 + length]
            if data.startswith(b"AMQP"):  # the broker's protocol header: it speaks another version
                raise _Handshake("protocol", 505, f"the broker does not speak AMQP 0-9-1 (it answered {data[:8]!r})")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise _Handshake(step)
            data += chunk


def _client_properties(name: str) -> dict[str, Any]:
    return {
        "product": "amqp-dispatcher",
        "version": VERSION,
        "platform": "Python",
        "connection_name": name,
        "capabilities": {
            "authentication_failure_close": True,
            "basic.nack": True,
            "connection.blocked": True,
            "consumer_cancel_notify": True,
            "publisher_confirms": True,
        },
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
