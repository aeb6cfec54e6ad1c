"""The consumer pool's own survival, on the in-memory broker: no RabbitMQ involved.

What users rely on here: a worker that dies for any reason but the pool's stop is replaced and
its unanswered message goes back to the queue, so a pool never sits alive consuming nothing;
backoff stays capped however many failures pile up; a message whose headers could not be
decoded never reaches the consumer and never loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime import supervisor
from amqp_dispatcher.runtime.errors import PublishReturned
from amqp_dispatcher.runtime.message import Undecodable

from .rig import Rig, retry_policy, wait_for


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff's shape is tested below; here it only needs to be short."""
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.02)


events: list[tuple[str, object]] = []
release = gevent.event.Event()  # what a "sleep" message waits for


class Recorder:
    def __init__(self) -> None:
        events.append(("init", id(self)))

    def consume(self, amqp: Any, msg: Any) -> None:
        events.append(("consume", msg.body))
        if msg.body == b"greenlet-exit":
            raise gevent.GreenletExit
        if msg.body == b"sleep":
            release.wait()

    def shutdown(self, exception: BaseException | None = None) -> None:
        events.append(("shutdown", type(exception).__name__ if exception else None))


@pytest.fixture(autouse=True)
def fresh_events() -> Iterator[None]:
    events.clear()
    release.clear()
    yield
    release.set()  # no instance outlives its test


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
    harness = Rig(Recorder)
    try:
        harness.send(1)
        wait_for(lambda: len(harness.settled(1)) == 2)
        assert harness.settled(1) == [("reject", True), ("ack", False)], (
            "the unanswered message goes back to its queue, and a replacement worker consumes it"
        )
        assert [event for event in events if event[0] == "shutdown"] == [("shutdown", None)], "old instance retired"
    finally:
        harness.close()


def test_a_consumer_raising_greenlet_exit_is_a_failure_not_the_end_of_its_worker() -> None:
    harness = Rig(Recorder)
    try:
        harness.send(1, body=b"greenlet-exit")
        wait_for(lambda: harness.settled(1))
        assert set(harness.settled(1)) == {("reject", True)}, "every attempt fails, and goes back"
        harness.send(2)
        wait_for(lambda: harness.settled(2))
        assert harness.settled(2) == [("ack", False)]
        assert ("shutdown", "GreenletExit") in events
    finally:
        harness.close()


@pytest.mark.parametrize("busy", [False, True])
def test_a_worker_killed_from_outside_is_replaced(busy: bool) -> None:
    harness = Rig(Recorder, count=2)
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
            wait_for(lambda: len([e for e in events if e == ("consume", b"sleep")]) == 2)  # and is consumed again
        assert all(not worker.dead for worker in harness.pool._workers.values())
    finally:
        harness.close()


def test_an_undecodable_message_never_reaches_the_consumer_and_is_dead_lettered() -> None:
    harness = Rig(Recorder)
    try:
        undecodable = Undecodable(reason="OverflowError: timestamp out of range", raw_headers=b"\x00")
        harness.send(1, body=b"undecodable", undecodable=undecodable)
        harness.send(2, body=b"plain")
        wait_for(lambda: harness.settled(2))
        assert harness.settled(1) == [("reject", False)], "rejected without requeue: never loops"
        assert [message.body for message in harness.ready("dead")] == [b"undecodable"], "dead-lettered as sent"
        assert [event for event in events if event[0] == "consume"] == [("consume", b"plain")]
        assert harness.pool.undecodable == 1
    finally:
        harness.close()


def test_an_undecodable_message_the_parking_queue_cannot_take_waits_in_its_queue() -> None:
    retry = retry_policy(max_attempts=3)
    harness = Rig(Recorder, on_error=retry)
    harness.broker.refuse_credentials()  # the publishing connection cannot open: no parking yet
    try:
        undecodable = Undecodable(reason="RecursionError: too deep", raw_headers=b"")
        harness.send(1, body=b"undecodable", undecodable=undecodable)
        wait_for(lambda: len(harness.settled(1)) >= 2)  # the broker redelivers what was requeued
        assert set(harness.settled(1)) == {("reject", True)}, "back to its queue while the parking queue is away"
        harness.broker.start()
        wait_for(lambda: harness.settled(1)[-1] == ("ack", False))
        assert len(harness.ready("q.parked")) == 1
        assert harness.pool.undecodable == 1, "counted once, when set aside"
        assert not [event for event in events if event[0] == "consume"]
    finally:
        harness.close()


def test_headers_that_cannot_be_sent_again_travel_as_text_rather_than_loop() -> None:
    """pika reads a large double header as an integer past 64 bits, which it cannot write back."""
    retry = retry_policy(max_attempts=1)
    harness = Rig(Failing, on_error=retry)
    try:
        harness.send(1, headers={"price": 10**19})
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("ack", False)], "parked, not requeued forever"
        (parked,) = harness.ready("q.parked")
        assert parked.properties["headers"]["x-dispatcher-original-headers"] == "{'price': 10000000000000000000}"
    finally:
        harness.close()


def test_an_undecodable_message_is_parked_with_its_raw_headers_under_a_retry_policy() -> None:
    retry = retry_policy(max_attempts=3)
    harness = Rig(Recorder, on_error=retry)
    try:
        harness.send(1, undecodable=Undecodable(reason="RecursionError: too deep", raw_headers=b"\x01raw"))
        wait_for(lambda: harness.settled(1))
        assert harness.settled(1) == [("ack", False)], "acked once its copy is parked"
        (parked,) = harness.ready("q.parked")
        assert (parked.exchange, parked.routing_key, parked.body) == ("", "q.parked", b"x")
        headers = parked.properties["headers"]
        assert headers["x-dispatcher-undecodable"] == "RecursionError: too deep"
        assert headers["x-dispatcher-raw-headers"] == b"\x01raw" and headers["x-dispatcher-queue"] == "q"
        assert parked.properties["message_id"] == "1" and parked.properties["delivery_mode"] == 2
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
    harness = Rig(Publishing, raise_unroutable=raise_unroutable)
    try:  # exchange `ex` has no binding for `nowhere`
        harness.send(1)
        harness.send(2, body=b"explicit")
        wait_for(lambda: harness.settled(1) and harness.settled(2))
        assert ("raised", "explicit") in events, "mandatory=True raises whatever the config says"
        if raise_unroutable:
            assert set(harness.settled(1)) == {("reject", True)}, "on_unroutable: raise makes consume fail"
            assert harness.publisher.unroutable == 0
        else:
            assert harness.settled(1) == [("ack", False)] and ("returned", "default") in events
            assert harness.publisher.unroutable == 1
    finally:
        harness.close()
