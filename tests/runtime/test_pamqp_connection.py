"""The pamqp transport against a scripted peer: what RabbitMQ cannot be made to do on demand.

A broker gone silent (heartbeats), one that keeps publishing blocked, a malformed frame, a
handshake that never answers or answers in another protocol, a close from the broker, frames
cut anywhere by TCP, and deliveries still on the way to a consumer that was cancelled. The
transport's behaviour with RabbitMQ itself is tested on both transports in tests/integration
and tests/faults.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gevent
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pamqp import body, commands, frame, header

from amqp_dispatcher.runtime.errors import AccessRefused, BrokerError, BrokerUnreachable, ConnectionLost
from amqp_dispatcher.runtime.pamqp_transport import PamqpTransport
from amqp_dispatcher.runtime.settings import ConnectionSettings, parse_url

from .amqp_peer import Peer, Session


def settings_for(port: int, *, heartbeat: int = 0, timeout: float = 5.0) -> ConnectionSettings:
    parsed = parse_url(f"amqp://guest:guest@127.0.0.1:{port}/", default_heartbeat=heartbeat)
    return dataclasses.replace(parsed, connection_timeout=timeout)


def connect(peer: Peer, **options: Any) -> Any:
    blocked_timeout = options.pop("blocked_timeout", None)
    return PamqpTransport().connect(settings_for(peer.port, **options), name="test", blocked_timeout=blocked_timeout)


def test_a_broker_silent_for_two_heartbeat_intervals_is_a_lost_connection() -> None:
    def script(session: Session) -> None:
        session.handshake(heartbeat_seconds=1)
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer, heartbeat=1)
        reasons: list[BrokerError] = []
        connection.add_close_callback(reasons.append)
        reason = connection.wait_closed(timeout=10)
        assert isinstance(reason, ConnectionLost) and "no heartbeat" in str(reason)
        assert reasons == [reason], "the close callbacks ran once, with why"
        assert peer.sessions[0].heartbeats() >= 1, "a quiet connection sent heartbeats of its own"


def test_publishing_blocked_longer_than_the_limit_closes_the_connection() -> None:
    def script(session: Session) -> None:
        session.handshake()
        session.send(commands.Connection.Blocked(reason="low on memory"))
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer, blocked_timeout=0.3)
        blocked: list[bool] = []
        connection.add_blocked_callback(blocked.append)
        reason = connection.wait_closed(timeout=10)
        assert blocked == [True]
        assert isinstance(reason, ConnectionLost) and "blocked" in str(reason) and "0.3 s" in str(reason)


def test_a_broker_that_repeats_connection_blocked_does_not_push_the_limit_back() -> None:
    def script(session: Session) -> None:
        session.handshake()
        while True:  # until the client gives up and closes the socket
            session.send(commands.Connection.Blocked(reason="low on memory"))
            gevent.sleep(0.05)

    with Peer(script) as peer:
        connection = connect(peer, blocked_timeout=0.3)
        reason = connection.wait_closed(timeout=10)
        assert isinstance(reason, ConnectionLost) and "more than 0.3 s" in str(reason)


def test_a_malformed_frame_ends_the_connection_and_fails_a_waiting_call_at_once() -> None:
    def script(session: Session) -> None:
        session.handshake()
        channel = session.open_channel()
        session.expect(commands.Basic.Qos)
        session.sock.sendall(frame.marshal(commands.Basic.QosOk(), channel)[:-1] + b"\x00")
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        closed: list[BrokerError] = []
        channel.add_close_callback(closed.append)
        with pytest.raises(ConnectionLost, match="does not end with 0xCE"):
            channel.qos(10)
        assert not channel.is_open and not connection.is_open
        assert len(closed) == 1
        assert channel.settle(1, "ack") is False, "a closed channel settles nothing"


def test_a_handshake_that_never_answers_is_unreachable_after_the_connection_timeout() -> None:
    def script(session: Session) -> None:
        session.idle()

    with Peer(script) as peer, pytest.raises(BrokerUnreachable, match=r"no answer to the AMQP handshake in 0\.5 s"):
        connect(peer, timeout=0.5)


def test_a_server_of_another_protocol_version_is_unreachable_with_why() -> None:
    def script(session: Session) -> None:
        session.sock.recv(8)
        session.sock.sendall(b"AMQP\x00\x00\x09\x00")

    with Peer(script) as peer, pytest.raises(BrokerUnreachable, match="does not speak AMQP 0-9-1"):
        connect(peer)


@pytest.mark.parametrize(
    "code, text, error",
    [
        (320, "CONNECTION_FORCED - broker forced connection closure", ConnectionLost),
        (530, "NOT_ALLOWED", AccessRefused),
    ],
)
def test_the_brokers_close_is_answered_and_reported_with_its_code(code: int, text: str, error: type[Exception]) -> None:
    answered = gevent.event.Event()

    def script(session: Session) -> None:
        session.handshake()
        session.send(commands.Connection.Close(reply_code=code, reply_text=text, class_id=0, method_id=0))
        session.expect(commands.Connection.CloseOk)
        answered.set()

    with Peer(script) as peer:
        connection = connect(peer)
        reason = connection.wait_closed(timeout=10)
        assert type(reason) is error and reason.reply_code == code and text in str(reason)
        assert answered.wait(5), "the client answered with close-ok"


def deliver_script(body_bytes: bytes, cuts: list[int], frame_max: int) -> Any:
    """A peer that delivers one message, its frames cut into pieces at `cuts`."""

    def script(session: Session) -> None:
        channel, tag = session.consuming()
        parts = [
            frame.marshal(commands.Basic.Deliver(tag, 1, False, "ex", "key"), channel),
            frame.marshal(header.ContentHeader(0, len(body_bytes), commands.Basic.Properties(message_id="m")), channel),
        ]
        step = frame_max - 8
        parts += [
            frame.marshal(body.ContentBody(body_bytes[i : i + step]), channel) for i in range(0, len(body_bytes), step)
        ]
        data = b"".join(parts)
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            session.sock.sendall(data[start:end])
            gevent.sleep(0)
        session.idle()

    return script


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=40000), st.lists(st.integers(1, 200), max_size=8), st.data())
def test_a_message_cut_anywhere_by_tcp_arrives_whole(body_bytes: bytes, gaps: list[int], data: Any) -> None:
    total = 7 + 1 + 8 + len(body_bytes) * 2  # a bound on the frames' length: cuts beyond it are dropped
    cuts = sorted({min(sum(gaps[: i + 1]) * data.draw(st.integers(1, 50)), total) for i in range(len(gaps))})
    with Peer(deliver_script(body_bytes, [cut for cut in cuts if cut > 0], 4096)) as peer:
        connection = connect(peer)
        channel = connection.channel()
        got: gevent.event.AsyncResult[Any] = gevent.event.AsyncResult()
        channel.consume("q", got.set, on_cancel=lambda: None)
        delivery = got.get(timeout=10)
        assert delivery.message.body == body_bytes
        assert delivery.message.properties == {"message_id": "m"}
        assert delivery.message.delivery_info["routing_key"] == "key"
        connection.close(timeout=1)


def test_a_delivery_for_a_cancelled_consumer_goes_back_to_the_queue() -> None:
    rejected = gevent.event.AsyncResult()

    def script(session: Session) -> None:
        channel, tag = session.consuming()
        session.expect(commands.Basic.Cancel)
        # a message the broker sent before it saw the cancel
        session.send(commands.Basic.Deliver(tag, 7, False, "", "q"), channel)
        session.send(header.ContentHeader(0, 1, commands.Basic.Properties()), channel)
        session.send(body.ContentBody(b"x"), channel)
        session.send(commands.Basic.CancelOk(consumer_tag=tag), channel)
        rejected.set(session.expect(commands.Basic.Reject))
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        delivered: list[Any] = []
        tag = channel.consume("q", delivered.append, on_cancel=lambda: None)
        assert tag.startswith("ctag1."), "tags shaped as pika's, which consumers of the original read"
        channel.cancel(tag)
        reject = rejected.get(timeout=10)
        assert (reject.delivery_tag, reject.requeue) == (7, True)
        assert delivered == []


def raw_deliver(channel: int, tag: str, delivery_tag: int, exchange: bytes, routing_key: bytes) -> bytes:
    """basic.deliver with names as raw bytes: RabbitMQ passes on routing keys that are not UTF-8."""
    fields = bytes((len(tag),)) + tag.encode() + delivery_tag.to_bytes(8, "big") + b"\x00"
    fields += bytes((len(exchange),)) + exchange + bytes((len(routing_key),)) + routing_key
    payload = (60).to_bytes(2, "big") + (60).to_bytes(2, "big") + fields
    return bytes((1,)) + channel.to_bytes(2, "big") + len(payload).to_bytes(4, "big") + payload + b"\xce"


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=255), st.binary(max_size=255))
def test_names_that_are_not_utf8_arrive_as_bytes_and_the_connection_goes_on(
    exchange: bytes, routing_key: bytes
) -> None:
    def script(session: Session) -> None:
        channel, tag = session.consuming()
        for delivery_tag in (1, 2):
            session.sock.sendall(raw_deliver(channel, tag, delivery_tag, exchange, routing_key))
            session.send(header.ContentHeader(0, 1, commands.Basic.Properties()), channel)
            session.send(body.ContentBody(b"x"), channel)
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        got: list[Any] = []
        both = gevent.event.Event()
        channel.consume(
            "q", lambda delivery: (got.append(delivery), len(got) == 2 and both.set()), on_cancel=lambda: None
        )
        assert both.wait(10) and connection.is_open
        info = got[0].message.delivery_info
        for name, raw in (("exchange", exchange), ("routing_key", routing_key)):
            expected: str | bytes
            try:
                expected = raw.decode()
            except UnicodeDecodeError:
                expected = raw  # as pika gives it
            assert info[name] == expected
        connection.close(timeout=1)


@pytest.mark.parametrize("fault", ["a delivery callback", "a close callback"])
def test_a_callback_that_raises_ends_the_connection_instead_of_wedging_it(fault: str) -> None:
    def script(session: Session) -> None:
        channel, tag = session.consuming()
        session.send(commands.Basic.Deliver(tag, 1, False, "", "q"), channel)
        session.send(header.ContentHeader(0, 0, commands.Basic.Properties()), channel)
        if fault == "a close callback":
            session.send(
                commands.Connection.Close(reply_code=320, reply_text="CONNECTION_FORCED", class_id=0, method_id=0)
            )
        session.idle()

    def broken(*_: object) -> None:
        raise RuntimeError("a defect")

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        if fault == "a delivery callback":
            channel.consume("q", broken, on_cancel=lambda: None)
        else:
            channel.add_close_callback(broken)
            channel.consume("q", lambda _delivery: None, on_cancel=lambda: None)
        reason = connection.wait_closed(timeout=10)
        assert isinstance(reason, ConnectionLost)
        assert not connection.is_open and not channel.is_open


def test_a_late_reply_to_a_call_that_timed_out_answers_nothing() -> None:
    def script(session: Session) -> None:
        session.handshake()
        channel = session.open_channel()
        cancel = session.expect(commands.Basic.Cancel)
        gevent.sleep(0.3)  # after the client stopped waiting
        session.send(commands.Basic.CancelOk(consumer_tag=cancel.consumer_tag), channel)
        declare = session.expect(commands.Queue.Declare)
        session.send(commands.Queue.DeclareOk(queue=declare.queue, message_count=5, consumer_count=0), channel)
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        channel.cancel("ctag1.x", timeout=0.1)  # never raises
        assert channel.message_count("q") == 5


def test_a_channel_closed_from_both_sides_at_once_keeps_its_number_until_the_broker_answers() -> None:
    """Our close and the broker's cross on the wire: the broker's close-ok for the old channel
    comes after, and must not end a new channel that took its number."""

    def script(session: Session) -> None:
        session.handshake()
        old = session.open_channel()
        session.expect(commands.Channel.Close)
        session.send(
            commands.Channel.Close(reply_code=406, reply_text="PRECONDITION_FAILED", class_id=0, method_id=0), old
        )
        session.expect(commands.Channel.CloseOk)
        session.open_channel()
        session.send(commands.Channel.CloseOk(), old)  # the answer to the client's own close
        number, _ = session.expect_on_channel(commands.Basic.Qos)
        session.send(commands.Basic.QosOk(), number)
        session.open_channel()
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        old = connection.channel()
        old.close()
        gevent.wait([old.closed], timeout=10)
        assert old.closed.ready()
        new = connection.channel()
        assert new.number != old.number
        new.qos(10)  # answered after the close-ok, on the same socket: that close-ok has been read
        assert new.is_open and connection.is_open
        assert connection.channel().number == old.number, "once answered, the number is free again"
        connection.close(timeout=1)


def test_a_broker_without_plain_authentication_is_a_refusal() -> None:
    def script(session: Session) -> None:
        session.sock.recv(8)
        session.send(commands.Connection.Start(server_properties={}, mechanisms="AMQPLAIN", locales="en_US"))
        session.idle()

    with Peer(script) as peer, pytest.raises(AccessRefused, match="does not offer PLAIN"):
        connect(peer)


FRAME_MAX = 131072  # what the peer tunes
INTERRUPTIONS = [
    commands.Basic.Deliver("ctag1.x", 2, False, "", "q"),
    commands.Basic.Ack(1),
    commands.Basic.QosOk(),
    commands.Channel.Flow(active=True),
]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["after the method", "after the header", "inside the body"])
@pytest.mark.parametrize("interruption", INTERRUPTIONS, ids=lambda command: type(command).__name__)
def test_a_method_in_the_middle_of_a_message_ends_the_connection(position: int, interruption: Any) -> None:
    """AMQP sends a message's method, header and body frames together on a channel: a method
    between them (after the method, after the header, or between two body frames) is a broken peer."""

    def script(session: Session) -> None:
        channel, tag = session.consuming()
        session.send(commands.Basic.Deliver(tag, 1, False, "", "q"), channel)
        frames = [header.ContentHeader(0, 10, commands.Basic.Properties()), body.ContentBody(b"12345")]
        for sent, value in enumerate(frames):
            if sent == position:
                break
            session.send(value, channel)
        session.send(interruption, channel)
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        delivered: list[Any] = []
        channel.consume("q", delivered.append, on_cancel=lambda: None)
        reason = connection.wait_closed(timeout=10)
        assert isinstance(reason, ConnectionLost) and "in the middle of a message" in str(reason)
        assert delivered == []


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.integers(FRAME_MAX - 8 - 16, FRAME_MAX - 8 + 16), st.integers(FRAME_MAX - 8, 2**32 - 1)))
@example(FRAME_MAX - 8)  # the largest allowed
@example(FRAME_MAX - 7)  # the smallest refused
def test_a_frame_ends_the_connection_exactly_when_it_is_above_frame_max(length: int) -> None:
    """frame_max counts a frame's 7-byte head and its end octet: a body frame of frame_max - 8
    bytes is the largest allowed."""
    allowed = length + 8 <= FRAME_MAX

    def script(session: Session) -> None:
        channel, tag = session.consuming()
        session.send(commands.Basic.Deliver(tag, 1, False, "", "q"), channel)
        session.send(header.ContentHeader(0, length, commands.Basic.Properties()), channel)
        head = b"\x03" + channel.to_bytes(2, "big") + length.to_bytes(4, "big")
        session.sock.sendall(head + (b"x" * length + b"\xce" if allowed else b""))
        session.idle()

    with Peer(script) as peer:
        connection = connect(peer)
        channel = connection.channel()
        delivered = gevent.event.AsyncResult()
        channel.consume("q", delivered.set, on_cancel=lambda: None)
        if allowed:
            assert len(delivered.get(timeout=10).message.body) == length
            assert connection.is_open
            connection.close(timeout=1)
        else:
            reason = connection.wait_closed(timeout=10)
            assert isinstance(reason, ConnectionLost) and f"above the {FRAME_MAX} agreed" in str(reason)
            assert not delivered.ready()
