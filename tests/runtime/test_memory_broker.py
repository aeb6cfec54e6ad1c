"""The in-memory broker keeps the RabbitMQ rules the runtime's unit tests rely on.

Routing (topic patterns checked against an independent oracle, alternate exchanges), the
prefetch window, requeueing marked redelivered, closing a channel returning what it held,
publisher confirms and returns, waits on the broker's clock, the refusals RabbitMQ words, and
what a test kit looks at (unacknowledged messages, drops, callbacks not yet run).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.clock import ManualClock
from amqp_dispatcher.runtime.errors import DeclarationRefused, PublishReturned, PublishTimeout
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.memory.broker import topic_matches
from amqp_dispatcher.runtime.spec import Binding, Exchange
from amqp_dispatcher.runtime.transport import Delivery

from .rig import SETTINGS, queue, wait_for

words = st.lists(st.sampled_from(["a", "b", "c"]), max_size=4)
patterns = st.lists(st.sampled_from(["a", "b", "*", "#"]), min_size=1, max_size=4)


def oracle(pattern: list[str], key: list[str]) -> bool:
    """RabbitMQ's topic rule as a regular expression, each word written with its leading dot."""
    pieces = {"*": r"\.[^.]+", "#": r"(?:\.[^.]+)*"}
    expression = "".join(pieces.get(word, r"\." + re.escape(word)) for word in pattern)
    return re.fullmatch(expression, "".join("." + word for word in key)) is not None


@given(patterns, words)
def test_topic_routing_follows_rabbitmqs_rule(pattern: list[str], key: list[str]) -> None:
    assert topic_matches(pattern, key) == oracle(pattern, key)


def test_known_topic_cases() -> None:
    cases = {
        ("order.*", "order.created"): True,
        ("order.*", "order.created.eu"): False,
        ("order.#", "order"): True,
        ("#.eu", "order.created.eu"): True,
        ("*.created", "created"): False,
        ("#", ""): True,
    }
    for (pattern, key), expected in cases.items():
        assert topic_matches(pattern.split("."), key.split(".")) is expected, (pattern, key)


def consuming(broker: MemoryBroker, prefetch: int) -> tuple[Any, list[Delivery]]:
    channel = MemoryTransport(broker).connect(SETTINGS, name="t").channel()
    channel.qos(prefetch)
    received: list[Delivery] = []
    channel.consume("q", received.append, on_cancel=lambda: None)
    return channel, received


def test_a_channel_gets_no_more_than_its_prefetch_until_it_answers() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    for number in range(5):
        broker.publish("", "q", str(number).encode())
    _, received = consuming(broker, prefetch=2)
    wait_for(lambda: len(received) == 2)
    assert len(broker.ready("q")) == 3
    received[0].ack()
    wait_for(lambda: len(received) == 3)
    assert [delivery.message.body for delivery in received] == [b"0", b"1", b"2"]


def test_requeued_and_returned_messages_go_back_to_their_place_marked_redelivered() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    for number in range(3):
        broker.publish("", "q", str(number).encode())
    channel, received = consuming(broker, prefetch=1)
    wait_for(lambda: len(received) == 1)
    received[0].reject(requeue=True)
    wait_for(lambda: len(received) == 2)
    assert (received[1].message.body, received[1].message.redelivered) == (b"0", True)
    channel.close()
    assert received[1].ack() is False, "a closed channel sends nothing"
    assert [(m.body, m.redelivered) for m in broker.ready("q")] == [(b"0", True), (b"1", False), (b"2", False)]


@settings(deadline=None)  # greenlets run in the hub's turns; the bound is wait_for's
@given(st.lists(st.binary(max_size=8), max_size=20), st.integers(min_value=1, max_value=5))
def test_every_message_published_is_delivered_once_when_each_is_acked(bodies: list[bytes], prefetch: int) -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    channel = MemoryTransport(broker).connect(SETTINGS, name="t").channel()
    channel.qos(prefetch)
    received: list[bytes] = []

    def acking(delivery: Delivery) -> None:
        received.append(delivery.message.body)
        delivery.ack()

    channel.consume("q", acking, on_cancel=lambda: None)
    for body in bodies:
        broker.publish("", "q", body)
    wait_for(lambda: len(received) == len(bodies))
    assert sorted(received) == sorted(bodies)
    assert not broker.ready("q") and not channel.unacked and not broker.protocol_errors


def test_a_second_answer_closes_the_channel_as_rabbitmq_does() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    broker.publish("", "q", b"once")
    channel, received = consuming(broker, prefetch=1)
    wait_for(lambda: received)
    assert received[0].ack() is True
    received[0].ack()
    assert not channel.is_open
    assert broker.protocol_errors == ["channel 1: ack of delivery 1: PRECONDITION_FAILED - unknown delivery tag 1"]
    assert [answer.how for answer in broker.settled] == ["ack"]


def test_delivery_tags_count_from_one_on_each_channel() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    broker.publish("", "q", b"a")
    first, received = consuming(broker, prefetch=1)
    wait_for(lambda: received)
    first.close()
    _, again = consuming(broker, prefetch=1)
    wait_for(lambda: again)
    assert (received[0].tag, again[0].tag) == (1, 1)
    assert again[0].message.redelivered


def test_connection_blocked_reaches_the_callbacks_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="amqp-dispatcher")
    broker = MemoryBroker()
    connection = MemoryTransport(broker).connect(SETTINGS, name="t")
    heard: list[bool] = []
    connection.add_blocked_callback(heard.append)
    broker.block()
    broker.block(False)
    wait_for(lambda: heard == [True, False])
    assert "the broker blocks publishing on memory" in caplog.text and "the broker unblocked memory" in caplog.text


def test_what_no_binding_routes_goes_to_the_alternate_exchange() -> None:
    broker = MemoryBroker()
    for name, arguments in (("orders", {"alternate-exchange": "unrouted"}), ("unrouted", {})):
        broker.declare_exchange(
            Exchange(
                name=name,
                type="fanout" if not arguments else "direct",
                durable=True,
                auto_delete=False,
                internal=False,
                passive=False,
                arguments=arguments,
            )
        )
    broker.declare_queue(queue("lost-and-found"))
    broker.bind("lost-and-found", Binding(exchange="unrouted", routing_key="", arguments={}))
    assert broker.publish("orders", "no.binding", b"x") == 1
    assert [message.body for message in broker.ready("lost-and-found")] == [b"x"]
    assert broker.unroutable == []


def test_a_redeclaration_with_other_settings_is_refused() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    with pytest.raises(DeclarationRefused) as refusal:
        broker.declare_queue(replace(queue("q"), auto_delete=True))
    assert refusal.value.reply_code == 406


def exchange(name: str, kind: str = "direct", *, internal: bool = False, alternate: str | None = None) -> Exchange:
    arguments = {"alternate-exchange": alternate} if alternate else {}
    return Exchange(
        name=name, type=kind, durable=True, auto_delete=False, internal=internal, passive=False, arguments=arguments
    )


def confirming(broker: MemoryBroker) -> Any:
    channel = MemoryTransport(broker).connect(SETTINGS, name="t").channel()
    channel.enable_confirms()
    return channel


def test_a_mandatory_publish_no_queue_receives_is_returned_unless_an_alternate_exchange_routes_it() -> None:
    broker = MemoryBroker()
    broker.declare_exchange(exchange("lost-and-found", "fanout"))
    broker.declare_exchange(exchange("empty", "fanout"))
    for name, alternate in (("routed", "lost-and-found"), ("dead-end", "empty"), ("a", "b"), ("b", "a")):
        broker.declare_exchange(exchange(name, alternate=alternate))
    broker.declare_queue(queue("lost"))
    broker.bind("lost", Binding(exchange="lost-and-found", routing_key="", arguments={}))
    channel = confirming(broker)
    channel.publish("routed", "nobody", b"kept", {}, mandatory=True, timeout=1)
    for source in ("dead-end", "a", ""):  # an alternate that routes nowhere; a cycle of them; no queue by that name
        with pytest.raises(PublishReturned) as returned:
            channel.publish(source, "nobody", b"returned", {}, mandatory=True, timeout=1)
        assert (returned.value.reply_code, returned.value.reply_text) == (312, "NO_ROUTE")
    channel.publish("a", "nobody", b"not mandatory", {}, mandatory=False, timeout=1)
    assert [(m.body, m.exchange) for m in broker.ready("lost")] == [(b"kept", "routed")]
    assert [(d.message.body, d.reason) for d in broker.dropped] == [(b"returned", "returned")] * 3 + [
        (b"not mandatory", "unroutable")
    ]


def test_a_publish_no_confirm_answers_waits_its_timeout_on_the_brokers_clock() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.declare_queue(queue("q"))
    broker.silent = True
    publishing: Any = gevent.spawn(confirming(broker).publish, "", "q", b"m", {}, mandatory=False, timeout=30)
    gevent.sleep(0)
    clock.advance(29.999)
    assert not publishing.ready()
    clock.advance(0.001)
    with pytest.raises(PublishTimeout):
        publishing.get(timeout=1)
    assert broker.ready("q") == [], "a broker that never answers never took it"


def test_a_channel_without_confirms_sends_the_message_and_then_waits_in_vain() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.declare_queue(queue("q"))
    channel = MemoryTransport(broker).connect(SETTINGS, name="t").channel()
    publishing = gevent.spawn(channel.publish, "", "q", b"m", {}, mandatory=False, timeout=5)
    gevent.sleep(0)
    assert [m.body for m in broker.ready("q")] == [b"m"]
    clock.advance(5)
    with pytest.raises(PublishTimeout):
        publishing.get(timeout=1)


def test_publishing_to_an_internal_exchange_closes_the_channel() -> None:
    broker = MemoryBroker()
    broker.declare_exchange(exchange("inside", internal=True))
    channel = confirming(broker)
    with pytest.raises(DeclarationRefused) as refusal:
        channel.publish("inside", "", b"m", {}, mandatory=False, timeout=1)
    assert refusal.value.reply_code == 403 and not channel.is_open


def test_a_delivery_on_its_way_to_a_cancelled_consumer_is_rejected_back_as_pika_does() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q", **{"x-queue-type": "quorum"}))
    channel, received = consuming(broker, prefetch=1)
    wait_for(lambda: broker.pending_callbacks == 0)
    broker.publish("", "q", b"m")
    assert broker.pending_callbacks == 1 and broker.unacked("q")[0].body == b"m", "taken, not yet handed over"
    channel.cancel(next(iter(channel.consumers)))
    wait_for(lambda: broker.pending_callbacks == 0)
    assert received == [] and [(a.how, a.requeue) for a in broker.settled] == [("reject", True)]
    assert [(m.body, m.delivery_count) for m in broker.ready("q")] == [(b"m", 1)]


def test_unacked_and_dropped_show_what_a_queue_has_out_and_what_it_lost() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    for body in (b"a", b"b", b"c"):
        broker.publish("", "q", body)
    channel = MemoryTransport(broker).connect(SETTINGS, name="t").channel()
    held = [channel.get("q") for _ in range(2)]
    assert [m.body for m in broker.unacked("q")] == [b"a", b"b"] and [m.body for m in broker.ready("q")] == [b"c"]
    broker.delete_queue("q")
    assert held[0] is not None and held[0].ack()
    assert held[1] is not None and held[1].nack(requeue=True)
    assert [(d.message.body, d.queue, d.reason) for d in broker.dropped] == [
        (b"c", "q", "deleted"),
        (b"b", "q", "deleted"),
    ]


IN_Q = "for queue 'q' in vhost '/'"


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({"x-message-ttl": "abc"}, f"invalid arg 'x-message-ttl' {IN_Q}: \"expected integer, got longstr\""),
        ({"x-max-length": -1}, f"invalid arg 'x-max-length' {IN_Q}: {{value_negative,-1}}"),
        ({"x-overflow": "nope"}, f"invalid arg 'x-overflow' {IN_Q}: invalid_overflow"),
        (
            {"x-dead-letter-routing-key": "k"},
            f"invalid arg 'x-dead-letter-routing-key' {IN_Q}: routing_key_but_no_dlx_defined",
        ),
        ({"x-delivery-limit": 5}, f"invalid arg 'x-delivery-limit' {IN_Q} of queue type rabbit_classic_queue"),
        (
            {"x-dead-letter-exchange": 5},
            "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'",
        ),
        ({"x-queue-type": "nope"}, f"invalid arg 'x-queue-type' {IN_Q}: \"unsupported queue type 'nope'\""),
    ],
)
def test_queue_arguments_rabbitmq_refuses_are_refused_in_its_words(arguments: dict[str, Any], text: str) -> None:
    with pytest.raises(DeclarationRefused) as refusal:
        MemoryBroker().declare_queue(queue("q", **arguments))
    assert (refusal.value.reply_code, refusal.value.reply_text) == (406, f"PRECONDITION_FAILED - {text}")


def test_header_values_come_back_as_pika_hands_them_over() -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    naive = datetime(2026, 1, 2, 3, 4, 5, 678)
    broker.publish("", "q", b"m", {"headers": {"at": naive, "nested": {"at": [naive]}, "price": Decimal("1.50")}})
    (message,) = broker.ready("q")
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert message.headers == {"at": aware, "nested": {"at": [aware]}, "price": Decimal("1.5")}
