"""The test kit's harness: what a user's test relies on, on services built in the test."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.clock import ManualClock
from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Queue, Reject, Requeue, Retry
from amqp_dispatcher.testing import Harness, KitError, StillRunning
from tests.runtime.rig import service


class Scripted:
    """Does what each message's headers say; records every call in `calls`."""

    calls: ClassVar[list[tuple[str, bytes]]] = []

    def consume(self, amqp: Any, msg: Any) -> None:
        self.calls.append(("consume", msg.body))
        answer = msg.headers.get("answer", "none")
        if answer == "fail":
            raise ValueError(f"failing on {msg.body!r}")
        if answer == "block":
            gevent.sleep(float(msg.headers["seconds"]))
        if answer == "publish":
            amqp.publish("events", "order.done", {"from": "scripted"}, msg.body)
        if answer == "ack":
            amqp.ack()
        elif answer == "reject":
            amqp.reject(requeue=False)
        elif answer == "nack":
            amqp.nack(requeue=False)
        elif answer == "requeue":
            amqp.nack(requeue=True)

    def shutdown(self, exception: BaseException | None = None) -> None:
        self.calls.append(("shutdown", repr(exception).encode()))


def queue(name: str, arguments: dict[str, Any] | None = None, bindings: tuple[Any, ...] = ()) -> Queue:
    return Queue(
        name=name,
        durable=True,
        auto_delete=False,
        exclusive=False,
        passive=False,
        arguments=arguments or {},
        bindings=bindings,
    )


EVENTS = Exchange(
    name="events", type="topic", durable=True, auto_delete=False, internal=False, passive=False, arguments={}
)
DEAD = Exchange(
    name="dead", type="fanout", durable=True, auto_delete=False, internal=False, passive=False, arguments={}
)


class SlowToCreate(Scripted):
    """A constructor that waits on real I/O (a connection pool, say)."""

    def __init__(self) -> None:
        gevent.sleep(0.05)
        self.calls.append(("init", b""))


def shop(on_error: Any = None, *, count: int = 2, prefetch: int = 5, consumer: type = Scripted) -> Any:
    """work (dead-lettering to dead-letters), the retry policy's queues, and an `events` exchange."""
    policy = on_error or Requeue()
    queues = [
        queue("work", {"x-dead-letter-exchange": "dead"}),
        queue("dead-letters", bindings=(Binding(exchange="dead", routing_key="", arguments={}),)),
        queue("audit", bindings=(Binding(exchange="events", routing_key="order.#", arguments={}),)),
    ]
    if isinstance(policy, Retry):
        queues += [
            queue(
                name,
                {
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": "work",
                },
            )
            for name, delay in zip(policy.delay_queues, policy.delays, strict=True)
        ]
        queues.append(queue(policy.parking_queue))
    entry = ConsumerEntry(
        consumer=consumer, queue="work", consumer_count=count, prefetch_count=prefetch, on_error=policy
    )
    return service((entry,), tuple(queues), (EVENTS, DEAD), shutdown_timeout=5.0)


RETRY = Retry(
    max_attempts=3, delays=(5.0, 60.0), delay_queues=("work.retry.5s", "work.retry.60s"), parking_queue="work.parked"
)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    Scripted.calls.clear()


ANSWERS = st.sampled_from(["none", "ack", "reject", "nack", "publish"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWERS, max_size=30), count=st.integers(1, 4), prefetch=st.integers(1, 10))
def test_every_message_ends_where_its_answer_sends_it(answers: list[str], count: int, prefetch: int) -> None:
    with Harness(shop(count=count, prefetch=prefetch)) as kit:
        for number, answer in enumerate(answers):
            kit.send("work", f"m{number}", headers={"answer": answer})
        kit.run_until_idle()
        acked = sorted(m.text for m in kit.acked("work"))
        rejected = sorted(m.text for m in kit.rejected("work"))
        assert acked == sorted(f"m{n}" for n, a in enumerate(answers) if a in ("none", "ack", "publish"))
        assert rejected == sorted(f"m{n}" for n, a in enumerate(answers) if a in ("reject", "nack"))
        assert sorted(m.text for m in kit.messages("dead-letters")) == rejected
        assert [m.text for m in kit.messages("audit")] == [f"m{n}" for n, a in enumerate(answers) if a == "publish"]
        assert kit.messages("work") == [] and kit.failures == []
    assert kit.status == 0 and kit.broker.protocol_errors == []


def test_a_retry_waits_on_the_clock_and_parks_after_the_last_attempt() -> None:
    with Harness(shop(RETRY)) as kit:
        kit.send("work", "poison", headers={"answer": "fail"}, message_id="p-1")
        kit.run_until_idle()
        assert len(kit.failures) == 1 and [m.text for m in kit.messages("work.retry.5s")] == ["poison"]
        kit.advance(4.9)
        assert len(kit.failures) == 1, "not retried before its delay"
        kit.advance(0.1)
        assert len(kit.failures) == 2 and [m.text for m in kit.messages("work.retry.60s")] == ["poison"]
        elapsed = kit.run_until_done()
        assert elapsed >= 60
        [parked] = kit.parked("work")
        assert parked.properties["message_id"] == "p-1"
        assert parked.headers["x-dispatcher-attempts"] == 3
        assert parked.headers["x-dispatcher-exception-type"] == "builtins.ValueError"
        assert str(kit.failures[0]).endswith("raised ValueError: failing on b'poison'")
        assert kit.failures[0].queue == "work" and kit.failures[0].consumer.endswith(":Scripted")


def test_a_failed_instance_is_replaced_only_when_the_clock_has_waited_its_backoff() -> None:
    def consumed() -> list[bytes]:
        return [body for call, body in Scripted.calls if call == "consume"]

    with Harness(shop(count=1)) as kit:
        kit.send("work", "fails", headers={"answer": "fail"})
        kit.send("work", "fine")
        kit.run_until_idle()
        assert consumed() == [b"fails"]
        kit.advance(0.49)
        assert consumed() == [b"fails"], "no new instance before the 0.5 s backoff"
        kit.advance(0.01)
        assert sorted(consumed()[1:3]) == [b"fails", b"fine"]
        assert [m.text for m in kit.requeued("work")][:1] == ["fails"]
        assert ("shutdown", repr(ValueError("failing on b'fails'")).encode()) in Scripted.calls


def test_a_message_that_fails_for_ever_is_reported_not_run_for_ever() -> None:
    with Harness(shop(Requeue(), count=1)) as kit:
        kit.send("work", "poison", headers={"answer": "fail"})
        with pytest.raises(StillRunning, match=r"'work' holds 1|the last failure: .*failing on b'poison'"):
            kit.run_until_done(limit=120)


def test_reject_sends_a_failure_to_the_dead_letter_exchange_with_x_death() -> None:
    with Harness(shop(Reject())) as kit:
        kit.send("work", "poison", headers={"answer": "fail"})
        kit.run_until_idle()
        [dead] = kit.messages("dead-letters")
        assert dead.headers["x-death"][0]["reason"] == "rejected"
        assert dead.headers["x-death"][0]["queue"] == "work"


def test_a_handler_that_never_returns_is_reported_after_the_timeout() -> None:
    kit = Harness(shop(count=1), timeout=0.2).start()
    kit.send("work", "slow", headers={"answer": "block", "seconds": 0.5})
    with pytest.raises(StillRunning, match=r"still running after 0\.2 s"):
        kit.run_until_idle()
    kit.timeout = 5
    assert kit.stop() == 0


def test_mistakes_in_a_test_are_explained() -> None:
    with Harness(shop()) as kit:
        with pytest.raises(KitError, match=r"no exchange 'orders' .*it has: 'dead', 'events'"):
            kit.publish("orders", "x", "body")
        with pytest.raises(KitError, match=r"no queue 'wrok'"):
            kit.send("wrok", "body")
        with pytest.raises(KitError, match="no consumer of 'work' has on_error: retry"):
            kit.parked("work")
        with pytest.raises(KitError, match="no queue is bound"):
            kit.publish("events", "nobody.listens", "body", mandatory=True)
        with pytest.raises(KitError, match="already been started"):
            kit.start()
    with pytest.raises(KitError, match="has no SERVICE"):
        Harness(pytest)
    with pytest.raises(KitError, match="cannot import the service package 'no_such_package'"):
        Harness("no_such_package")


def unstartable() -> Any:
    """A service whose queue must exist already (passive): the broker refuses it with 404."""
    elsewhere = dataclasses.replace(queue("elsewhere"), passive=True)
    entry = ConsumerEntry(consumer=Scripted, queue="elsewhere", consumer_count=1, prefetch_count=1, on_error=Requeue())
    return service((entry,), (elsewhere,))


def test_a_service_that_cannot_start_says_why() -> None:
    broken = unstartable()
    with pytest.raises(KitError, match=r"did not start \(exit status 3\).*elsewhere"):
        Harness(broken).start()


def test_what_leaves_the_broker_without_a_queue_is_reported_with_why() -> None:
    with Harness(shop()) as kit:
        kit.publish("events", "nobody.listens", "lost")
        kit.send("audit", "short-lived", expiration="1000")
        kit.run_until_idle()
        assert [m.text for m in kit.messages("audit")] == ["short-lived"]
        kit.advance(1)
        assert kit.messages("audit") == []
        assert [(d.message.text, d.queue, d.reason) for d in kit.dropped] == [
            ("lost", None, "unroutable"),
            ("short-lived", "audit", "expired"),
        ]
        with pytest.raises(KitError, match=r"RabbitMQ would refuse this publish: .*406"):
            kit.send("audit", "bad", expiration="soon")


def test_a_service_that_never_comes_to_rest_is_reported_not_waited_for_for_ever() -> None:
    kit = Harness(shop(count=1), timeout=0.5).start()
    kit.send("work", "not yet", headers={"answer": "requeue"})
    with pytest.raises(StillRunning, match="requeued for ever"):
        kit.run_until_idle()
    assert kit.stop() == 0
    assert [m.text for m in kit.messages("work")] == ["not yet"]


def test_idle_waits_for_a_constructor_that_waits_on_real_time() -> None:
    def created() -> int:
        return len([call for call in Scripted.calls if call[0] == "init"])

    with Harness(shop(Reject(), count=2, consumer=SlowToCreate)) as kit:
        assert created() == 2
        kit.send("work", "first")
        kit.run_until_idle()
        assert [m.text for m in kit.acked("work")] == ["first"]
        kit.send("work", "fails", headers={"answer": "fail"})
        kit.run_until_idle()
        assert created() == 2 and len(kit.failures) == 1
        kit.advance(0.5)  # the replacement's backoff, then its constructor, on real time
        assert created() == 3


def test_stop_is_sigterm_what_is_queued_stays_queued() -> None:
    kit = Harness(shop(count=1)).start()
    for number in range(5):
        kit.send("work", f"m{number}")
    assert kit.stop() == 0
    assert kit.acked() == [], "stopping does not consume what waits"
    assert [m.text for m in kit.messages("work")] == [f"m{n}" for n in range(5)]


def test_two_harnesses_on_one_clock_each_come_to_rest_when_it_moves() -> None:
    clock = ManualClock()
    with Harness(shop(RETRY), clock=clock) as first, Harness(shop(RETRY), clock=clock) as second:
        first.send("work", "poison", headers={"answer": "fail"})
        second.send("work", "poison", headers={"answer": "fail"})
        first.run_until_idle()
        second.run_until_idle()
        first.advance(5)
        assert [m.text for m in first.messages("work.retry.60s")] == ["poison"]
        assert [m.text for m in second.messages("work.retry.60s")] == ["poison"]


def test_after_the_broker_restarts_the_service_reconnects_and_consumes() -> None:
    with Harness(shop()) as kit:
        kit.broker.stop()
        kit.broker.start()
        kit.send("work", "after the restart")
        kit.run_until_idle()
        assert [m.text for m in kit.acked("work")] == ["after the restart"]


def test_a_harness_that_cannot_start_leaves_no_log_handler_behind() -> None:
    import logging

    before = list(logging.getLogger("amqp-dispatcher").handlers)
    broken = unstartable()
    with pytest.raises(KitError):
        Harness(broken).start()
    assert logging.getLogger("amqp-dispatcher").handlers == before
