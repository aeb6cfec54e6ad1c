"""A scripted AMQP peer on a loopback port, for the pamqp transport's own logic.

It plays a broker just far enough to reach a state RabbitMQ cannot be made to reach on
demand (silent after the handshake, a malformed frame, an endless connection.blocked, a
handshake that never answers) and records what the client sent. It is no stand-in for
RabbitMQ: the transport's behaviour against the real broker is tested in tests/integration
and tests/faults, on both transports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import gevent
import gevent.server
from pamqp import commands, frame, heartbeat
from pamqp.exceptions import UnmarshalingException

Script = Callable[["Session"], None]


class Session:
    """One client connection, seen from the broker's side."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""
        self.received: list[tuple[int, Any]] = []

    def send(self, value: Any, channel: int = 0) -> None:
        self.sock.sendall(frame.marshal(value, channel))

    def read(self) -> tuple[int, Any]:
        """The next frame the client sent (channel, value); raises EOFError when it closed."""
        while True:
            if self.buffer:
                try:
                    consumed, channel, value = frame.unmarshal(self.buffer)
                except UnmarshalingException:  # not all of it yet
                    consumed = 0
                if consumed:
                    self.buffer = self.buffer[consumed:]
                    self.received.append((channel, value))
                    return channel, value
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def expect(self, kind: type[Any]) -> Any:
        while True:
            _, value = self.read()
            if isinstance(value, kind):
                return value

    def handshake(self, *, heartbeat_seconds: int = 0) -> None:
        """The broker's side of start, tune and open."""
        assert self.sock.recv(8) == b"AMQP\x00\x00\x09\x01"
        self.send(commands.Connection.Start(server_properties={"product": "peer"}, mechanisms="PLAIN", locales="en_US"))
        self.expect(commands.Connection.StartOk)
        self.send(commands.Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=heartbeat_seconds))
        self.expect(commands.Connection.TuneOk)
        self.expect(commands.Connection.Open)
        self.send(commands.Connection.OpenOk())

    def consuming(self) -> tuple[int, str]:
        """The handshake, a channel opened and a consumer started on it: (channel, consumer tag)."""
        self.handshake()
        channel = self.open_channel()
        consume = self.expect(commands.Basic.Consume)
        self.send(commands.Basic.ConsumeOk(consumer_tag=consume.consumer_tag), channel)
        return channel, consume.consumer_tag

    def open_channel(self) -> int:
        channel, _ = self.expect_on_channel(commands.Channel.Open)
        self.send(commands.Channel.OpenOk(), channel)
        return channel

    def expect_on_channel(self, kind: type[Any]) -> tuple[int, Any]:
        """The next frame of this kind the client sent, and the channel it came on."""
        while True:
            channel, value = self.read()
            if isinstance(value, kind):
                return channel, value

    def heartbeats(self) -> int:
        return sum(isinstance(value, heartbeat.Heartbeat) for _, value in self.received)

    def idle(self) -> None:
        """Read until the client closes, answering nothing but its connection.close."""
        try:
            while True:
                _, value = self.read()
                if isinstance(value, commands.Connection.Close):
                    self.send(commands.Connection.CloseOk())
                    return
        except (EOFError, OSError):
            return


class Peer:
    """A server on 127.0.0.1 running `script` for each connection; use as a context manager."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sessions: list[Session] = []
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._serve)

    def __enter__(self) -> Peer:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop(timeout=1)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def _serve(self, sock: Any, _address: object) -> None:
        session = Session(sock)
        self.sessions.append(session)
        with contextlib.suppress(EOFError, OSError):
            self.script(session)
