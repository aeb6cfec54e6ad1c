"""The consumer pool's own survival, on a fake channel: no broker involved.

What users rely on here: a worker that dies for any reason but the pool's stop is replaced and
its unanswered message goes back to the queue, so a pool never sits alive consuming nothing;
backoff stays capped however many failures pile up; a message whose headers could not be
decoded never reaches the consumer and never loops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import pika
import pika.spec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime import supervisor, transport
from amqp_dispatcher.runtime.errors import PublishError, PublishReturned, PublishUnencodable
from amqp_dispatcher.runtime.message import Undecodable
from amqp_dispatcher.runtime.spec import ConsumerEntry, RetryPolicy


class FakeChannel:
    """What the pool needs of a channel: whether it is open, and settling (recorded)."""

    def __init__(self) -> None:
        self.is_open = True
        self.settled: list[tuple[int, str, bool]] = []

    def settle(self, delivery_tag: int, how: str, *, requeue: bool = False) -> bool:
        self.settled.append((delivery_tag, how, requeue))
        return True


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, bytes, dict[str, Any]]] = []
        self.unroutable: list[tuple[str, str]] = []
        self.returns = False
        self.fail = 0  # how many publishes fail as if the connection were down
        self.encodes = False  # encode the properties as pika does, and refuse what it cannot write

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: dict[str, Any], **_: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise PublishError("cannot open the publishing connection: refused")
        if self.encodes:
            try:
                pika.BasicProperties(**transport.encode_properties(properties)).encode()
            except transport._ENCODING_ERRORS as error:
                raise PublishUnencodable(str(error)) from error
        self.published.append((exchange, routing_key, body, properties))
        if self.returns:
            raise PublishReturned("returned", reply_code=312, reply_text="NO_ROUTE")

    def note_unroutable(self, exchange: str, routing_key: str, returned: PublishReturned, log: Any) -> None:
        self.unroutable.append((exchange, routing_key))


def delivery(
    channel: FakeChannel,
    tag: int,
    body: bytes = b"x",
    undecodable: Undecodable | None = None,
    headers: dict[str, Any] | None = None,
) -> Any:
    method = pika.spec.Basic.Deliver(
        consumer_tag="c", delivery_tag=tag, redelivered=False, exchange="e", routing_key="k"
    )
    message = transport._message(method, pika.BasicProperties(message_id=str(tag), headers=headers), body)
    return transport.Delivery(channel, message, undecodable)  # type: ignore[arg-type]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the pool's greenlets run until the predicate holds (a bound, not a timing assertion)."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {predicate}")):
        while not predicate():
            gevent.sleep(0.005)


class Harness:
    def __init__(self, consumer: type, *, count: int = 1, retry: RetryPolicy | None = None, **pool: Any) -> None:
        entry = ConsumerEntry(
            consumer=consumer,
            queue="q",
            consumer_count=count,
            prefetch_count=10,
            on_error="retry" if retry else "requeue",
            retry=retry,
        )
        self.channel = FakeChannel()
        self.publisher = FakePublisher()
        self.pool = pool_module.ConsumerPool(entry, self.publisher, **pool)  # type: ignore[arg-type]
        self.pool._channel, self.pool._accepting = self.channel, True  # type: ignore[assignment]  # attached
        self.pool.start()

    def send(self, tag: int, **kwargs: Any) -> None:
        self.pool._deliver(delivery(self.channel, tag, **kwargs))

    def settled(self, tag: int) -> list[tuple[str, bool]]:
        return [(how, requeue) for number, how, requeue in self.channel.settled if number == tag]

    def close(self) -> None:
        self.pool.stop()
        self.pool.close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff's shape is tested below; here it only needs to be short."""
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.02)


events: list[tuple[str, object]] = []


class Recorder:
    def __init__(self) -> None:
        events.append(("init", id(self)))

    def consume(self, amqp: Any, msg: Any) -> None:
        events.append(("consume", msg.body))
        if msg.body == b"greenlet-exit":
            raise gevent.GreenletExit
        if msg.body == b"sleep":
            gevent.sleep(30)

    def shutdown(self, exception: BaseException | None = None) -> None:
        events.append(("shutdown", type(exception).__name__ if exception else None))


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    events.clear()


@given(st.integers(min_value=-(10**6), max_value=10**100))
def test_backoff_stays_capped_for_any_number_of_failures(failures: int) -> None:
    delay = pool_module.backoff(failures)
    assert pool_module.BACKOFF_BASE <= delay <= pool_module.BACKOFF_CAP
    assert pool_module.backoff(failures + 1) >= delay


@given(st.integers(min_value=-(10**6), max_value=10**100))
def test_reconnect_jitter_stays_capped_for_any_attempt(attempt: int) -> None:
    assert 0 <= supervisor.full_jitter(attempt) <= supervisor.RECONNECT_CAP


def test_a_worker_broken_by_our_own_code_is_replaced_and_its_message_requeued(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def broken_once(message: Any) -> None:
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("a bug in the pool's own code")

    monkeypatch.setattr(pool_module, "restore_origin", broken_once)
    harness = Harness(Recorder)
    try:
        harness.send(1)
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("reject", True)], "the unanswered message goes back to its queue"
        harness.send(2)
        wait_for(lambda: harness.settled(2))
        assert harness.settled(2) == [("ack", False)], "a replacement worker consumes the next message"
        assert [event for event in events if event[0] == "shutdown"] == [("shutdown", None)], "old instance retired"
    finally:
        harness.close()


def test_a_consumer_raising_greenlet_exit_is_a_failure_not_the_end_of_its_worker() -> None:
    harness = Harness(Recorder)
    try:
        harness.send(1, body=b"greenlet-exit")
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("reject", True)]
        harness.send(2)
        wait_for(lambda: harness.settled(2))
        assert harness.settled(2) == [("ack", False)]
        assert ("shutdown", "GreenletExit") in events
    finally:
        harness.close()


@pytest.mark.parametrize("busy", [False, True])
def test_a_worker_killed_from_outside_is_replaced(busy: bool) -> None:
    harness = Harness(Recorder, count=2)
    try:
        if busy:
            harness.send(1, body=b"sleep")
            wait_for(lambda: ("consume", b"sleep") in events)
        victim = next(iter(harness.pool._busy)) if busy else 0
        harness.pool._workers[victim].kill(block=False)
        for tag in range(10, 14):
            harness.send(tag)
        wait_for(lambda: all(harness.settled(tag) == [("ack", False)] for tag in range(10, 14)))
        if busy:
            wait_for(lambda: harness.settled(1))
            assert harness.settled(1) == [("reject", True)], "the message it held goes back"
        assert all(not worker.dead for worker in harness.pool._workers.values())
    finally:
        harness.close()


def test_an_undecodable_message_never_reaches_the_consumer_and_is_dead_lettered() -> None:
    harness = Harness(Recorder)
    try:
        undecodable = Undecodable(reason="OverflowError: timestamp out of range", raw_headers=b"\x00")
        harness.send(1, body=b"undecodable", undecodable=undecodable)
        harness.send(2, body=b"plain")
        wait_for(lambda: harness.settled(2))
        assert harness.settled(1) == [("reject", False)], "rejected without requeue: never loops"
        assert [event for event in events if event[0] == "consume"] == [("consume", b"plain")]
        assert harness.pool.undecodable == 1
    finally:
        harness.close()


def test_an_undecodable_message_the_parking_queue_cannot_take_waits_in_its_queue() -> None:
    retry = RetryPolicy(max_attempts=3, delays=(1.0,), delay_queues=("q.retry.1s",), parking_queue="q.parked")
    harness = Harness(Recorder, retry=retry)
    harness.publisher.fail = 2  # the publishing connection is down for the first two tries
    try:
        undecodable = Undecodable(reason="RecursionError: too deep", raw_headers=b"")
        for tag in (1, 2, 3):  # the broker redelivers what was requeued
            harness.send(tag, body=b"undecodable", undecodable=undecodable)
            wait_for(lambda tag=tag: harness.settled(tag))
        assert [harness.settled(tag) for tag in (1, 2, 3)] == [[("reject", True)], [("reject", True)], [("ack", False)]]
        assert harness.pool.undecodable == 1, "counted once, when set aside"
        assert not [event for event in events if event[0] == "consume"]
    finally:
        harness.close()


def test_headers_that_cannot_be_sent_again_travel_as_text_rather_than_loop() -> None:
    """pika reads a large double header as an integer past 64 bits, which it cannot write back."""
    retry = RetryPolicy(max_attempts=1, delays=(1.0,), delay_queues=("q.retry.1s",), parking_queue="q.parked")
    harness = Harness(Failing, retry=retry)
    harness.publisher.encodes = True
    try:
        harness.send(1, headers={"price": 10**19})
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("ack", False)], "parked, not requeued forever"
        ((_, queue, _, properties),) = harness.publisher.published
        assert queue == "q.parked"
        assert properties["headers"]["x-dispatcher-original-headers"] == "{'price': 10000000000000000000}"
    finally:
        harness.close()


def test_an_undecodable_message_is_parked_with_its_raw_headers_under_a_retry_policy() -> None:
    retry = RetryPolicy(max_attempts=3, delays=(1.0,), delay_queues=("q.retry.1s",), parking_queue="q.parked")
    harness = Harness(Recorder, retry=retry)
    try:
        harness.send(1, undecodable=Undecodable(reason="RecursionError: too deep", raw_headers=b"\x01raw"))
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("ack", False)], "acked once its copy is parked"
        ((exchange, queue, body, properties),) = harness.publisher.published
        assert (exchange, queue, body) == ("", "q.parked", b"x")
        headers = properties["headers"]
        assert headers["x-dispatcher-undecodable"] == "RecursionError: too deep"
        assert headers["x-dispatcher-raw-headers"] == b"\x01raw" and headers["x-dispatcher-queue"] == "q"
        assert properties["message_id"] == "1" and properties["delivery_mode"] == 2
        assert not [event for event in events if event[0] == "consume"]
    finally:
        harness.close()


class Failing:
    def consume(self, amqp: Any, msg: Any) -> None:
        raise ValueError("always")

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


class Publishing:
    def consume(self, amqp: Any, msg: Any) -> None:
        if msg.body == b"explicit":
            try:
                amqp.publish("ex", "nowhere", {}, "body", mandatory=True)
            except PublishReturned:
                events.append(("raised", "explicit"))
        else:
            amqp.publish("ex", "nowhere", {}, "body")
            events.append(("returned", "default"))

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


@pytest.mark.parametrize("raise_unroutable", [False, True])
def test_an_unroutable_publish_is_logged_and_counted_unless_asked_to_raise(raise_unroutable: bool) -> None:
    harness = Harness(Publishing, raise_unroutable=raise_unroutable)
    harness.publisher.returns = True
    try:
        harness.send(1)
        harness.send(2, body=b"explicit")
        wait_for(lambda: harness.settled(1) and harness.settled(2))
        assert ("raised", "explicit") in events, "mandatory=True raises whatever the config says"
        if raise_unroutable:
            assert harness.settled(1) == [("reject", True)], "on_unroutable: raise makes consume fail"
            assert harness.publisher.unroutable == []
        else:
            assert harness.settled(1) == [("ack", False)] and ("returned", "default") in events
            assert harness.publisher.unroutable == [("ex", "nowhere")]
    finally:
        harness.close()
