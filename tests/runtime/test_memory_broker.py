"""The in-memory broker keeps the RabbitMQ rules the runtime's unit tests rely on.

Routing (topic patterns checked against an independent oracle), the prefetch window,
requeueing to the head marked redelivered, and closing a channel returning what it held.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.memory.broker import topic_matches
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
        assert topic_matches(pattern.split("."), key.split(".") if key else []) is expected, (pattern, key)


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


@given(st.lists(st.binary(max_size=8), max_size=20), st.integers(min_value=1, max_value=5))
def test_every_message_published_is_delivered_once_when_each_is_acked(bodies: list[bytes], prefetch: int) -> None:
    broker = MemoryBroker()
    broker.declare_queue(queue("q"))
    _, received = consuming(broker, prefetch)

    def ack_all() -> None:
        for delivery in received:
            if not delivery.settled:
                delivery.ack()

    for body in bodies:
        broker.publish("", "q", body)
    wait_for(lambda: (ack_all(), len(received) == len(bodies) and not broker.ready("q"))[1])
    assert sorted(delivery.message.body for delivery in received) == sorted(bodies)
