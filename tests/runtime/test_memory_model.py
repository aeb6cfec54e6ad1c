"""The in-memory broker models RabbitMQ 3.10 where a test kit needs it, on a clock the test moves.

TTL (head of the queue only, the lower of queue and message TTL, unacknowledged messages never
expire), dead-lettering with x-death as 3.10 writes it and its cycle rule, length limits and
their overflow modes, quorum delivery counts and limits, and where a returned message goes.
Every message published ends in exactly one place. tests/integration/test_memory_fidelity.py
holds the same behaviours against the real broker; here they run in no real time.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.clock import ManualClock
from amqp_dispatcher.runtime.errors import DeclarationRefused, PublishRefused
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryChannel, MemoryTransport
from amqp_dispatcher.runtime.memory.deadletter import with_death
from amqp_dispatcher.runtime.transport import Delivery

from .rig import SETTINGS, queue, wait_for


def broker_with(**queues: dict[str, Any]) -> tuple[MemoryBroker, ManualClock]:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    for name, arguments in queues.items():
        broker.declare_queue(queue(name, **arguments))
    return broker, clock


def to(target: str, **arguments: Any) -> dict[str, Any]:
    """Arguments that dead-letter to `target` through the default exchange."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target, **arguments}


def channel_of(broker: MemoryBroker) -> MemoryChannel:
    channel = MemoryTransport(broker).connect(SETTINGS, name="test").channel()
    channel.enable_confirms()
    return channel


def bodies(broker: MemoryBroker, name: str) -> list[bytes]:
    return [message.body for message in broker.ready(name)]


def deaths(broker: MemoryBroker, name: str) -> list[list[tuple[str, str, int]]]:
    """Each ready message's x-death as (queue, reason, count), newest first."""
    return [[(d["queue"], d["reason"], d["count"]) for d in m.headers.get("x-death", [])] for m in broker.ready(name)]


def got(channel: MemoryChannel, name: str) -> Delivery:
    delivery = channel.get(name)
    assert delivery is not None, f"nothing ready in {name!r}"
    return delivery


# TTL


def test_a_queue_ttl_of_an_hour_expires_its_messages_in_order_when_the_clock_gets_there() -> None:
    broker, clock = broker_with(dead={}, work=to("dead", **{"x-message-ttl": 3_600_000}))
    broker.publish("", "work", b"first")
    clock.advance(1)
    broker.publish("", "work", b"second")
    clock.advance(3598.999)
    assert bodies(broker, "work") == [b"first", b"second"]
    clock.advance(0.001)
    assert (bodies(broker, "work"), bodies(broker, "dead")) == ([b"second"], [b"first"])
    clock.advance(1)
    assert bodies(broker, "dead") == [b"first", b"second"] and clock.pending == 0


def test_a_short_lived_message_waits_behind_a_longer_lived_head_then_expires_on_reaching_it() -> None:
    broker, clock = broker_with(dead={}, work=to("dead"))
    broker.publish("", "work", b"head", {"expiration": "100"})
    broker.publish("", "work", b"short", {"expiration": "10"})
    clock.advance(0.05)
    assert bodies(broker, "work") == [b"head", b"short"], "only the head expires"
    clock.advance(0.05)
    assert bodies(broker, "dead") == [b"head", b"short"] and deaths(broker, "dead")[1] == [("work", "expired", 1)]


@pytest.mark.parametrize(("queue_ttl", "expiration", "expires_after"), [(50, "5000", 0.05), (5000, "20", 0.02)])
def test_the_lower_of_the_queue_ttl_and_the_message_expiration_applies(
    queue_ttl: int, expiration: str, expires_after: float
) -> None:
    broker, clock = broker_with(dead={}, work=to("dead", **{"x-message-ttl": queue_ttl}))
    broker.publish("", "work", b"m", {"expiration": expiration})
    clock.advance(expires_after - 0.001)
    assert bodies(broker, "dead") == []
    clock.advance(0.001)
    (dead,) = broker.ready("dead")
    assert "expiration" not in dead.properties and dead.headers["x-death"][0]["original-expiration"] == expiration


def test_expiration_0_is_delivered_only_to_a_consumer_that_can_take_it_at_once() -> None:
    broker, _ = broker_with(dead={}, work=to("dead"))
    broker.publish("", "work", b"nobody waits", {"expiration": "0"})
    assert bodies(broker, "dead") == [b"nobody waits"]
    channel = channel_of(broker)
    received: list[Delivery] = []
    channel.consume("work", received.append, on_cancel=lambda: None)
    broker.publish("", "work", b"taken", {"expiration": "0"})
    assert [body for _, body in ((q, m.body) for q, m in channel.unacked.values())] == [b"taken"]
    channel.qos(1)  # now full: the next one cannot be taken at once
    broker.publish("", "work", b"no room", {"expiration": "0"})
    assert bodies(broker, "dead") == [b"nobody waits", b"no room"]


def test_an_unacknowledged_message_never_expires_and_comes_back_with_its_old_expiry() -> None:
    broker, clock = broker_with(dead={}, work=to("dead", **{"x-message-ttl": 10}))
    broker.publish("", "work", b"held")
    channel = channel_of(broker)
    held = got(channel, "work")
    clock.advance(60)
    assert broker.unacked("work")[0].body == b"held" and bodies(broker, "dead") == []
    held.nack(requeue=True)
    assert bodies(broker, "dead") == [b"held"], "its expiry passed while it was out: it expires on its return"


@pytest.mark.parametrize(
    ("expiration", "why"),
    [
        ("abc", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("1.5", '{leftover_string,".5"}'),
        ("", "no_integer"),
        (" 5", "no_integer"),
        ("5 ", '{leftover_string," "}'),
    ],
)
def test_an_invalid_expiration_closes_the_publishers_channel_in_rabbitmqs_words(expiration: str, why: str) -> None:
    broker, _ = broker_with(work={})
    channel = channel_of(broker)
    with pytest.raises(DeclarationRefused) as refusal:
        channel.publish("", "work", b"m", {"expiration": expiration}, mandatory=False, timeout=1)
    assert refusal.value.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {why}"
    assert not channel.is_open and bodies(broker, "work") == []


# Dead-lettering and x-death


def test_reject_expire_loops_count_each_death_and_keep_the_first() -> None:
    broker, clock = broker_with(work=to("delay"), delay=to("work", **{"x-message-ttl": 20}))
    broker.publish("", "work", b"m", {"expiration": "60000", "headers": {"b": 1, "a": 2}})
    channel = channel_of(broker)
    for _ in range(2):
        got(channel, "work").reject(requeue=False)
        clock.advance(0.02)
    (message,) = broker.ready("work")
    assert deaths(broker, "work") == [[("delay", "expired", 2), ("work", "rejected", 2)]]
    assert list(message.headers) == [
        "a",
        "b",
        "x-death",
        *(f"x-first-death-{k}" for k in ("exchange", "queue", "reason")),
    ]
    assert [message.headers[f"x-first-death-{k}"] for k in ("reason", "queue", "exchange")] == ["rejected", "work", ""]
    rejected = message.headers["x-death"][1]
    assert list(rejected) == ["count", "exchange", "original-expiration", "queue", "reason", "routing-keys", "time"]
    assert rejected["original-expiration"] == "60000" and rejected["routing-keys"] == ["work"]
    assert rejected["time"] == datetime.fromtimestamp(int(clock.time() - 0.02), timezone.utc)
    assert "expiration" not in message.properties and message.redelivered is False


def test_three_queues_leave_x_death_in_the_order_3_10_writes_it() -> None:
    """3.10 regroups the earlier entries on every death, reversing them (observed on 3.10.8)."""
    broker, clock = broker_with(a=to("b", **{"x-message-ttl": 20}), b=to("c"), c=to("e", **{"x-message-ttl": 20}), e={})
    broker.publish("", "a", b"n")
    clock.advance(0.02)
    got(channel_of(broker), "b").reject(requeue=False)
    clock.advance(0.02)
    assert deaths(broker, "e") == [[("c", "expired", 1), ("a", "expired", 1), ("b", "rejected", 1)]]


def test_that_order_makes_3_10_see_a_cycle_and_drop_the_message() -> None:
    """c's death puts a's expiry right behind it, so coming back to a looks fully automatic."""
    broker, clock = broker_with(a=to("b", **{"x-message-ttl": 20}), b=to("c"), c=to("a", **{"x-message-ttl": 20}))
    broker.publish("", "a", b"n")
    clock.advance(0.02)
    got(channel_of(broker), "b").reject(requeue=False)
    clock.advance(0.02)
    assert all(not broker.ready(name) for name in "abc")
    (dropped,) = broker.dropped
    assert (dropped.queue, dropped.reason) == ("c", "expired") and "cycle" in dropped.detail


def test_a_queue_whose_expired_messages_come_back_to_it_drops_them() -> None:
    broker, clock = broker_with(loop={"x-message-ttl": 10, "x-dead-letter-exchange": ""})
    broker.publish("", "loop", b"m")
    clock.advance(0.01)
    assert broker.ready("loop") == [] and [(d.queue, d.reason) for d in broker.dropped] == [("loop", "expired")]
    assert broker.dropped[0].detail == "a dead-letter cycle without a rejection in it (loop -> loop)"


@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        ({}, "the queue has no dead-letter exchange"),
        ({"x-dead-letter-exchange": "gone"}, "its dead-letter exchange 'gone' does not exist"),
        ({"x-dead-letter-exchange": "amq.direct"}, "dead-letter exchange 'amq.direct' routed it to no queue"),
    ],
)
def test_a_message_dead_lettered_nowhere_is_recorded_as_dropped(arguments: dict[str, Any], detail: str) -> None:
    broker, _ = broker_with(work=arguments)
    broker.publish("", "work", b"m")
    got(channel_of(broker), "work").reject(requeue=False)
    assert [(d.message.body, d.queue, d.reason, d.detail) for d in broker.dropped] == [
        (b"m", "work", "rejected", detail)
    ]


death_events = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["rejected", "expired", "maxlen"])), max_size=30
)


@given(death_events)
def test_x_death_holds_one_entry_per_queue_and_reason_counting_every_death(events: list[tuple[str, str]]) -> None:
    headers: dict[str, Any] = {}
    for queue_name, reason in events:
        info = {"reason": reason, "queue": queue_name, "time": datetime.now(timezone.utc), "exchange": ""}
        headers = with_death(headers, {**info, "routing-keys": [queue_name]})
    entries = [(entry["queue"], entry["reason"], entry["count"]) for entry in headers.get("x-death", [])]
    assert Counter({(q, r): c for q, r, c in entries}) == Counter(events)
    assert len(entries) == len(set(events))
    if events:
        assert entries[0][:2] == events[-1], "the latest death comes first"
        first = [headers[f"x-first-death-{key}"] for key in ("queue", "reason")]
        assert tuple(first) == events[0]
        assert list(headers) == sorted(headers)


# Length limits


def test_drop_head_dead_letters_the_head_with_reason_maxlen() -> None:
    broker, _ = broker_with(dead={}, work=to("dead", **{"x-max-length": 2}))
    for body in (b"0", b"1", b"2"):
        broker.publish("", "work", body)
    assert (bodies(broker, "work"), deaths(broker, "dead")) == ([b"1", b"2"], [[("work", "maxlen", 1)]])


@pytest.mark.parametrize(("mode", "dead"), [("reject-publish", []), ("reject-publish-dlx", [b"2"])])
def test_a_full_queue_that_rejects_publishes_nacks_a_confirming_publisher(mode: str, dead: list[bytes]) -> None:
    broker, _ = broker_with(dead={}, work=to("dead", **{"x-max-length": 2, "x-overflow": mode}))
    channel = channel_of(broker)
    for body in (b"0", b"1"):
        channel.publish("", "work", body, {}, mandatory=True, timeout=1)
    with pytest.raises(PublishRefused):
        channel.publish("", "work", b"2", {}, mandatory=True, timeout=1)
    assert broker.publish("", "work", b"3") == 0, "a publisher without confirms never knows"
    assert bodies(broker, "work") == [b"0", b"1"] and bodies(broker, "dead") == [*dead, *([b"3"] if dead else [])]
    if not dead:
        assert [(d.message.body, d.reason) for d in broker.dropped] == [(b"2", "maxlen"), (b"3", "maxlen")]


def test_max_length_bytes_counts_the_bodies_of_ready_messages() -> None:
    broker, _ = broker_with(dead={}, work=to("dead", **{"x-max-length-bytes": 5}))
    for body in (b"aa", b"bbb", b"c"):
        broker.publish("", "work", body)
    assert (bodies(broker, "work"), bodies(broker, "dead")) == ([b"bbb", b"c"], [b"aa"])


def test_a_quorum_queue_refuses_once_over_its_limit_until_it_is_down_to_80_percent() -> None:
    """As observed on 3.10.8 (where each publisher hears of it asynchronously)."""
    broker, _ = broker_with(work={"x-queue-type": "quorum", "x-max-length": 10, "x-overflow": "reject-publish"})
    accepted = [broker.publish("", "work", str(n).encode()) for n in range(13)]
    assert accepted == [1] * 11 + [0, 0], "the publish that goes over is taken; those after it are not"
    channel = channel_of(broker)
    for _ in range(2):
        got(channel, "work").ack()
    assert broker.publish("", "work", b"at 9 of 10") == 0, "9 is above 80% of 10"
    got(channel, "work").ack()
    assert [broker.publish("", "work", b"from 8") for _ in range(4)] == [1, 1, 1, 0]


def test_a_requeue_over_the_limit_drops_the_head() -> None:
    broker, _ = broker_with(dead={}, work=to("dead", **{"x-max-length": 2}))
    for body in (b"1", b"2"):
        broker.publish("", "work", body)
    first = got(channel_of(broker), "work")
    for body in (b"3", b"4"):
        broker.publish("", "work", body)
    first.nack(requeue=True)
    assert (bodies(broker, "work"), bodies(broker, "dead")) == ([b"3", b"4"], [b"2", b"1"])


# Returns and quorum delivery limits


@pytest.mark.parametrize(
    ("kind", "order"), [("classic", [b"0", b"2", b"4", b"5"]), ("quorum", [b"4", b"5", b"2", b"0"])]
)
def test_a_returned_message_goes_back_to_its_place_in_a_classic_queue_and_to_the_tail_in_a_quorum_one(
    kind: str, order: list[bytes]
) -> None:
    broker, _ = broker_with(work={"x-queue-type": kind})
    for number in range(6):
        broker.publish("", "work", str(number).encode())
    channel = channel_of(broker)
    held = [got(channel, "work") for _ in range(4)]
    held[2].nack(requeue=True)
    held[0].reject(requeue=True)
    assert bodies(broker, "work") == order
    assert [m.redelivered for m in broker.ready("work")] == [m.body in (b"0", b"2") for m in broker.ready("work")]


def test_a_quorum_queue_counts_returns_and_dead_letters_past_the_delivery_limit() -> None:
    broker, _ = broker_with(dead={}, work=to("dead", **{"x-queue-type": "quorum", "x-delivery-limit": 2}))
    broker.publish("", "work", b"m", {"headers": {"h": 1}})
    seen = []
    for _ in range(3):
        channel = channel_of(broker)
        delivery = got(channel, "work")
        seen.append((delivery.message.redelivered, delivery.message.headers))
        channel.close()  # a closing channel returns it: that counts too
    assert seen == [
        (False, {"h": 1, "x-delivery-count": 0}),
        *((True, {"h": 1, "x-delivery-count": n}) for n in (1, 2)),
    ]
    assert deaths(broker, "dead") == [[("work", "delivery_limit", 1)]]
    assert "x-delivery-count" not in broker.ready("dead")[0].headers


def test_a_consumer_sees_x_delivery_count_only_on_redeliveries() -> None:
    broker, _ = broker_with(work={"x-queue-type": "quorum"})
    broker.publish("", "work", b"m")
    channel = channel_of(broker)
    received: list[Delivery] = []
    channel.consume("work", received.append, on_cancel=lambda: None)
    wait_for(lambda: received)
    received[0].reject(requeue=True)
    wait_for(lambda: len(received) == 2)
    assert [d.message.headers for d in received] == [{}, {"x-delivery-count": 1}]


def test_past_the_limit_without_a_dead_letter_exchange_it_is_dropped() -> None:
    broker, _ = broker_with(work={"x-queue-type": "quorum", "x-delivery-limit": 0})
    broker.publish("", "work", b"m")
    got(channel_of(broker), "work").nack(requeue=True)
    assert [(d.queue, d.reason) for d in broker.dropped] == [("work", "delivery_limit")]


# Every message ends somewhere


operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.sampled_from([None, "0", "10", "50"])),
        st.tuples(st.just("get"), st.sampled_from(["work", "delay"])),
        st.tuples(st.just("settle"), st.integers(0, 9), st.sampled_from(["ack", "requeue", "reject"])),
        st.tuples(st.just("advance"), st.sampled_from([0.005, 0.02, 0.1])),
        st.tuples(st.just("close")),
        st.tuples(st.just("consume")),
        st.tuples(st.just("turn")),
    ),
    max_size=40,
)
work_queues = st.fixed_dictionaries(
    {},
    optional={
        "x-queue-type": st.just("quorum"),
        "x-message-ttl": st.sampled_from([0, 30]),
        "x-max-length": st.integers(0, 3),
        "x-overflow": st.sampled_from(["drop-head", "reject-publish", "reject-publish-dlx"]),
    },
)


@settings(deadline=None, max_examples=150)
@given(work_queues, st.booleans(), operations)
def test_every_message_is_in_exactly_one_place_and_x_death_counts_its_deaths(
    arguments: dict[str, Any], limited: bool, steps: list[tuple[Any, ...]]
) -> None:
    if limited and arguments.get("x-queue-type") == "quorum":
        arguments["x-delivery-limit"] = 1
    broker, clock = broker_with(work=to("delay", **arguments), delay=to("work", **{"x-message-ttl": 20}))
    channel, published = channel_of(broker), 0
    channel.qos(2)
    for step in steps:
        match step:
            case ("publish", expiration):
                broker.publish("", "work", b"m", {"message_id": str(published), "expiration": expiration})
                published += 1
            case ("get", name):
                channel.get(name)
            case ("settle", index, how) if channel.unacked:
                tag = list(channel.unacked)[index % len(channel.unacked)]
                channel.settle(tag, "ack" if how == "ack" else "reject", requeue=how == "requeue")
            case ("advance", seconds):
                clock.advance(seconds)
            case ("close",):
                channel.close()
                channel = channel_of(broker)
                channel.qos(2)
            case ("consume",) if channel.consumers:  # a second time: cancel
                channel.cancel(next(iter(channel.consumers)))
            case ("consume",):
                channel.consume("work", lambda _delivery: None, on_cancel=lambda: None)
            case ("turn",):
                wait_for(lambda: broker.pending_callbacks == 0)
        assert places(broker) == Counter(str(number) for number in range(published))
        check_x_death_counts(broker)


def places(broker: MemoryBroker) -> Counter[str]:
    """Where each message is: ready, unacknowledged, dropped or acknowledged (by message_id)."""
    found = [m for name in broker.queues for m in broker.ready(name)]
    found += [m for name in broker.queues for m in broker.unacked(name)]
    found += [d.message for d in broker.dropped]
    found += [s.message for s in broker.settled if s.how == "ack"]
    return Counter(m.properties["message_id"] for m in found)


def check_x_death_counts(broker: MemoryBroker) -> None:
    events = Counter((d.message.properties["message_id"], d.queue, d.reason) for d in broker.dead_lettered)
    everywhere = [m for name in broker.queues for m in broker.ready(name) + broker.unacked(name)]
    for message in everywhere + [d.message for d in broker.dropped]:
        for entry in message.headers.get("x-death", []):
            key = (message.properties["message_id"], entry["queue"], entry["reason"])
            assert entry["count"] == events[key], (key, message.headers)
