"""The in-memory broker keeps the RabbitMQ rules the runtime's unit tests rely on.

Routing (topic patterns checked against an independent oracle), the prefetch window,
requeueing to the head marked redelivered, and closing a channel returning what it held.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.errors import DeclarationRefused
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


def test_requeued_and_returned_messages_go_back_to_the_head_marked_redelivered() -> None:
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
