"""The in-memory broker against RabbitMQ 3.10: the same operations on both, the same outcomes.

Each scenario runs through the transport seam, on the pika transport against a fresh vhost and
on the memory transport with a manual clock, and writes down what a client observes: bodies,
redelivered flags, exchange and routing key, headers with their order (x-death entries, their
fields, x-delivery-count), confirms, returns and queue depths. The two transcripts must be
equal. Times inside x-death are checked for their type (an aware UTC datetime, whole seconds,
as pika hands it over) and then left out. TTLs on RabbitMQ are tens of milliseconds and every
wait is for a condition, under a bound: where a scenario must know that a message's expiry has
passed without the message going anywhere, a probe with the same TTL, published after it to a
queue of its own, is waited for instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

import gevent
import pytest

from amqp_dispatcher.runtime.clock import ManualClock
from amqp_dispatcher.runtime.errors import PublishRefused, PublishReturned
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.pika_transport import PikaTransport
from amqp_dispatcher.runtime.settings import parse_url
from amqp_dispatcher.runtime.spec import Binding, Exchange, Queue
from amqp_dispatcher.runtime.transport import Channel, Connection, Delivery

from .harness import url

pytestmark = pytest.mark.broker

_BOUND = 5.0  # seconds a real-broker condition may take


class Side(Protocol):
    name: str

    def channel(self) -> Channel: ...

    def wait_until(self, predicate: Callable[[], Any], what: str) -> Any: ...

    def close(self) -> None: ...


class Real:
    name = "RabbitMQ"

    def __init__(self, vhost: str) -> None:
        self.connection: Connection = PikaTransport().connect(
            parse_url(url(vhost), default_heartbeat=20), name="fidelity"
        )

    def channel(self) -> Channel:
        channel = self.connection.channel()
        channel.enable_confirms()
        return channel

    def wait_until(self, predicate: Callable[[], Any], what: str) -> Any:
        deadline = gevent.get_hub().loop.now() + _BOUND
        while not (value := predicate()):
            if gevent.get_hub().loop.now() > deadline:
                raise AssertionError(f"{self.name}: waited {_BOUND:g} s for {what}")
            gevent.sleep(0.005)
        return value

    def close(self) -> None:
        self.connection.close()


class Memory:
    name = "memory"

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.broker = MemoryBroker(self.clock)
        settings = parse_url("amqp://guest:guest@memory/", default_heartbeat=20)
        self.connection: Connection = MemoryTransport(self.broker).connect(settings, name="fidelity")

    def channel(self) -> Channel:
        channel = self.connection.channel()
        channel.enable_confirms()
        return channel

    def wait_until(self, predicate: Callable[[], Any], what: str) -> Any:
        """Let the hub run, then move the clock from timer to timer, until the predicate holds."""
        for _ in range(1000):
            gevent.sleep(0)
            if value := predicate():
                return value
            due = self.clock.next_deadline()
            if due is not None:
                self.clock.fire_next(due)
        raise AssertionError(f"{self.name}: never {what}")

    def close(self) -> None:
        self.connection.close()


Scenario = Callable[[Side], list[Any]]


def same_on_both(scenario: Scenario, vhost: str) -> None:
    real = run(scenario, Real(vhost))
    memory = run(scenario, Memory())
    assert memory == real


def run(scenario: Scenario, side: Side) -> list[Any]:
    try:
        return scenario(side)
    finally:
        side.close()


# What a client observes.


def seen(delivery: Delivery) -> tuple[Any, ...]:
    message = delivery.message
    info = message.delivery_info
    properties = {key: value for key, value in message.properties.items() if key != "headers"}
    return (
        message.body,
        info["redelivered"],
        info["exchange"],
        info["routing_key"],
        plain(message.headers),
        plain(properties),
    )


def plain(value: Any) -> Any:
    """A value as comparable data, order of fields kept; a time checked, then left out."""
    if isinstance(value, dict):
        return tuple((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        assert value.tzinfo == timezone.utc and value.microsecond == 0, value
        return "<a UTC time>"
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # pika hands 64-bit integers over as pika.compat.long
    return value


def declare(channel: Channel, name: str, **arguments: Any) -> None:
    channel.declare_queue(
        Queue(
            name=name, durable=True, auto_delete=False, exclusive=False, passive=False, arguments=arguments, bindings=()
        )
    )


def dead_lettering(to: str, **arguments: Any) -> dict[str, Any]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": to, **arguments}


def exchange(channel: Channel, name: str, kind: str, **arguments: Any) -> None:
    channel.declare_exchange(
        Exchange(
            name=name, type=kind, durable=True, auto_delete=False, internal=False, passive=False, arguments=arguments
        )
    )


def bind(channel: Channel, queue: str, source: str, key: str = "") -> None:
    channel.bind(queue, Binding(exchange=source, routing_key=key, arguments={}))


def publish(
    channel: Channel, exchange: str, key: str, body: bytes, *, mandatory: bool = False, **properties: Any
) -> str:
    try:
        channel.publish(exchange, key, body, properties, mandatory=mandatory, timeout=_BOUND)
    except PublishRefused:
        return "nack"
    except PublishReturned as returned:
        return f"returned {returned.reply_code} {returned.reply_text}"
    return "ack"


def arrival(side: Side, channel: Channel, queue: str) -> Delivery:
    delivery: Delivery = side.wait_until(lambda: channel.get(queue), f"a message in {queue!r}")
    return delivery


def take(side: Side, channel: Channel, queue: str) -> tuple[Any, ...]:
    """What arrives next in the queue, acknowledged."""
    delivery = arrival(side, channel, queue)
    delivery.ack()
    return seen(delivery)


def drain(channel: Channel, queue: str, *, ack: bool = True) -> list[tuple[Any, ...]]:
    found = []
    while (delivery := channel.get(queue)) is not None:
        found.append(seen(delivery))
        if ack:
            delivery.ack()
    return found


def holding(side: Side, channel: Channel, queues: tuple[str, ...], count: int) -> None:
    def total() -> bool:
        return sum(channel.message_count(queue) for queue in queues) == count

    side.wait_until(total, f"{count} messages in {', '.join(queues)}")


def depth_is(side: Side, channel: Channel, queue: str, count: int) -> None:
    side.wait_until(lambda: channel.message_count(queue) == count, f"{count} messages in {queue!r}")


# The scenarios.


def reject_expire_loops(side: Side) -> list[Any]:
    """x-death after reject -> expire -> reject, and the order 3.10 leaves with three queues."""
    channel = side.channel()
    declare(channel, "work", **dead_lettering("delay"))
    declare(channel, "delay", **dead_lettering("work", **{"x-message-ttl": 20}))
    headers = {"zeta": 1, "alpha": {"n": [1, "s"]}, "Beta": "x"}
    out: list[Any] = [publish(channel, "", "work", b"m", headers=headers, expiration="60000")]
    for _ in range(3):
        delivery = arrival(side, channel, "work")
        out.append(seen(delivery))
        delivery.reject(requeue=False)
    declare(channel, "a", **dead_lettering("b", **{"x-message-ttl": 20}))
    declare(channel, "b", **dead_lettering("c"))
    declare(channel, "c", **dead_lettering("e", **{"x-message-ttl": 20}))
    declare(channel, "e")
    publish(channel, "", "a", b"n")
    delivery = arrival(side, channel, "b")
    out.append(seen(delivery))
    delivery.reject(requeue=False)
    delivery = arrival(side, channel, "e")
    out.append(seen(delivery))
    declare(channel, "f", **dead_lettering("g"))
    declare(channel, "g")
    publish(channel, "", "f", delivery.message.body, headers=delivery.message.headers)
    arrival(side, channel, "f").reject(requeue=False)
    out.append(seen(arrival(side, channel, "g")))
    return out


def expiry_cycle(side: Side) -> list[Any]:
    """A queue whose expired messages would come back to it: it is skipped, a witness is not."""
    channel = side.channel()
    exchange(channel, "fan", "fanout")
    declare(channel, "self", **{"x-message-ttl": 10, "x-dead-letter-exchange": "fan"})
    declare(channel, "witness")
    bind(channel, "self", "fan")
    bind(channel, "witness", "fan")
    publish(channel, "", "self", b"loop")
    witnessed = seen(arrival(side, channel, "witness"))
    return [witnessed, channel.message_count("self")]


def per_message_ttl_waits_for_the_head(side: Side) -> list[Any]:
    channel = side.channel()
    for name in ("dead", "probe-dead"):
        declare(channel, name)
    declare(channel, "q", **dead_lettering("dead"))
    declare(channel, "probe", **dead_lettering("probe-dead"))
    publish(channel, "", "q", b"head")
    publish(channel, "", "q", b"short", expiration="20")
    publish(channel, "", "probe", b"probe", expiration="20")
    depth_is(side, channel, "probe-dead", 1)
    out: list[Any] = [channel.message_count("q"), channel.message_count("dead")]
    head = channel.get("q")
    assert head is not None
    head.ack()
    depth_is(side, channel, "dead", 1)
    return [*out, channel.message_count("q"), drain(channel, "dead")]


def ttl_rules(side: Side) -> list[Any]:
    """The lower TTL applies; unacknowledged messages keep their expiry; expiration 0."""
    channel = side.channel()
    for name in ("rules-dead", "rules-probe-dead"):
        declare(channel, name)
    declare(channel, "queue-ttl", **dead_lettering("rules-dead", **{"x-message-ttl": 30}))
    declare(channel, "rules", **dead_lettering("rules-dead"))
    declare(channel, "rules-probe", **dead_lettering("rules-probe-dead"))
    publish(channel, "", "queue-ttl", b"lower queue ttl", expiration="60000")
    out: list[Any] = [take(side, channel, "rules-dead")]
    publish(channel, "", "rules", b"held", expiration="30")
    held = channel.get("rules")
    assert held is not None
    publish(channel, "", "rules-probe", b"probe", expiration="30")
    depth_is(side, channel, "rules-probe-dead", 1)
    out.append(channel.message_count("rules-dead"))  # an unacknowledged message does not expire
    held.nack(requeue=True)
    out.append(take(side, channel, "rules-dead"))  # back, its expiry long past
    publish(channel, "", "rules", b"zero, nobody waiting", expiration="0")
    out.append(take(side, channel, "rules-dead"))
    received: list[Delivery] = []
    channel.consume("rules", received.append, on_cancel=lambda: None)
    publish(channel, "", "rules", b"zero, taken at once", expiration="0")
    side.wait_until(lambda: received, "the consumer's delivery")
    return [*out, [seen(delivery) for delivery in received], channel.message_count("rules-dead")]


def overflow(side: Side) -> list[Any]:
    channel = side.channel()
    out: list[Any] = []
    for kind in ("classic", "quorum"):
        for mode in ("drop-head", "reject-publish", "reject-publish-dlx"):
            queue, dead = f"{kind}-{mode}", f"{kind}-{mode}-dead"
            declare(channel, dead)
            arguments = {"x-queue-type": kind, "x-max-length": 2, "x-overflow": mode}
            declare(channel, queue, **dead_lettering(dead, **arguments))
            confirms = [publish(channel, "", queue, str(number).encode()) for number in range(4)]
            kept = 4 - (confirms.count("nack") if mode == "reject-publish" else 0)
            holding(side, channel, (queue, dead), kept)
            out.append((queue, confirms, drain(channel, queue), drain(channel, dead)))
    declare(channel, "bytes-dead")
    declare(channel, "bytes", **dead_lettering("bytes-dead", **{"x-max-length-bytes": 5}))
    confirms = [publish(channel, "", "bytes", body) for body in (b"aa", b"bbb", b"c", b"dddddd")]
    depth_is(side, channel, "bytes-dead", 4)
    out.append(("bytes", confirms, drain(channel, "bytes"), drain(channel, "bytes-dead")))
    return out


def requeue_over_the_limit(side: Side) -> list[Any]:
    channel = side.channel()
    out: list[Any] = []
    for kind in ("classic", "quorum"):
        queue, dead = f"{kind}-limited", f"{kind}-limited-dead"
        declare(channel, dead)
        declare(channel, queue, **dead_lettering(dead, **{"x-queue-type": kind, "x-max-length": 2}))
        for body in (b"1", b"2"):
            publish(channel, "", queue, body)
        first = arrival(side, channel, queue)
        for body in (b"3", b"4"):
            publish(channel, "", queue, body)
        first.nack(requeue=True)
        depth_is(side, channel, dead, 2)
        out.append((kind, drain(channel, queue), drain(channel, dead)))
    return out


def requeue_positions(side: Side) -> list[Any]:
    """Where a returned message goes: its old place (classic), the tail (quorum), with flags and counts."""
    out: list[Any] = []
    for kind in ("classic", "quorum"):
        first = side.channel()
        queue = f"{kind}-positions"
        declare(first, queue, **{"x-queue-type": kind})
        for number in range(6):
            publish(first, "", queue, str(number).encode())
        held = [arrival(side, first, queue) for _ in range(4)]
        held[2].nack(requeue=True)
        held[0].nack(requeue=True)
        depth_is(side, first, queue, 4)
        second = side.channel()
        out.append((kind, "after two nacks", drain(second, queue, ack=False)))
        second.close()
        depth_is(side, first, queue, 4)
        out.append((kind, "after a channel closed", drain(first, queue, ack=False)))
        first.close()
        third = side.channel()
        depth_is(side, third, queue, 6)
        out.append((kind, "after both closed", drain(third, queue)))
        third.close()
    return out


def quorum_delivery_limit(side: Side) -> list[Any]:
    channel = side.channel()
    out: list[Any] = []
    declare(channel, "dead")
    declare(channel, "limited", **dead_lettering("dead", **{"x-queue-type": "quorum", "x-delivery-limit": 2}))
    publish(channel, "", "limited", b"m", headers={"h": 1}, expiration="60000")
    for _ in range(5):  # basic.get, rejected with requeue, until it is dead-lettered
        got = side.wait_until(lambda: channel.get("limited") or channel.message_count("dead"), "a delivery")
        if not isinstance(got, Delivery):
            break
        out.append(seen(got))
        got.reject(requeue=True)
    out.append(drain(channel, "dead"))
    declare(channel, "consumed", **dead_lettering("dead", **{"x-queue-type": "quorum", "x-delivery-limit": 1}))
    publish(channel, "", "consumed", b"c")
    deliveries: list[tuple[Any, ...]] = []

    def requeue(delivery: Delivery) -> None:
        deliveries.append(seen(delivery))
        delivery.nack(requeue=True)

    consumer = side.channel()
    consumer.qos(1)
    consumer.consume("consumed", requeue, on_cancel=lambda: None)
    depth_is(side, channel, "dead", 1)
    out += [deliveries, drain(channel, "dead")]
    declare(channel, "closing", **{"x-queue-type": "quorum", "x-delivery-limit": 5})
    publish(channel, "", "closing", b"k")
    holder = side.channel()
    arrival(side, holder, "closing")
    holder.close()
    out.append(seen(arrival(side, channel, "closing")))
    return out


def mandatory_and_alternates(side: Side) -> list[Any]:
    channel = side.channel()
    exchange(channel, "ae-routes", "fanout")
    exchange(channel, "ae-empty", "fanout")
    exchange(channel, "x1", "direct", **{"alternate-exchange": "ae-routes"})
    exchange(channel, "x2", "direct", **{"alternate-exchange": "ae-empty"})
    exchange(channel, "x3", "direct", **{"alternate-exchange": "missing"})
    exchange(channel, "x4", "direct", **{"alternate-exchange": "x5"})
    exchange(channel, "x5", "direct", **{"alternate-exchange": "x4"})
    exchange(channel, "x6", "direct", **{"alternate-exchange": "x2"})
    declare(channel, "lost")
    bind(channel, "lost", "ae-routes")
    declare(channel, "lost-k")
    bind(channel, "lost-k", "x5", "k")
    declare(channel, "full", **{"x-max-length": 0, "x-overflow": "reject-publish"})
    out: list[Any] = []
    for source, key in (("x1", "nokey"), ("x2", "nokey"), ("x3", "nokey"), ("x4", "nokey"), ("x6", "nokey")):
        out.append((source, key, publish(channel, source, key, b"m", mandatory=True)))
    out.append(("x4", "k", publish(channel, "x4", "k", b"m", mandatory=True)))
    out.append(("", "no-such-queue", publish(channel, "", "no-such-queue", b"m", mandatory=True)))
    out.append(("", "no-such-queue", publish(channel, "", "no-such-queue", b"m")))
    out.append(("", "full", publish(channel, "", "full", b"m", mandatory=True)))
    return [*out, drain(channel, "lost"), drain(channel, "lost-k")]


# Grouped so that each test, and its vhost (created and deleted by rabbitmqctl, a second or more
# each way), covers several scenarios; no two scenarios of a group share a name.
GROUPS = {
    "dead-lettering": (reject_expire_loops, expiry_cycle),
    "ttl": (per_message_ttl_waits_for_the_head, ttl_rules),
    "length-limits": (overflow, requeue_over_the_limit),
    "returns-and-quorum-limits": (requeue_positions, quorum_delivery_limit),
    "confirms-and-returns": (mandatory_and_alternates,),
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_memory_broker_observes_what_rabbitmq_does(group: str, vhost: str) -> None:
    for scenario in GROUPS[group]:
        same_on_both(scenario, vhost)
