"""One answer per message, and the error policies, on the in-memory broker.

What users rely on: a message is answered exactly once whatever the consumer does (answers
twice, answers nothing, raises after answering); a failure is settled as `on_error` says
(requeue, reject to the dead-letter exchange, or retry through delay queues to parking); a
failing instance is replaced after a backoff that doubles and resets on success; the pool
drains on stop; an answer for a message whose channel has closed is never sent on another.
"""

from __future__ import annotations

from typing import Any

import gevent.event
import pytest

from amqp_dispatcher.runtime import policy
from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime.errors import AlreadyAnswered, ConnectionLost
from amqp_dispatcher.runtime.spec import ConsumerEntry, Reject, Requeue

from .rig import SETTINGS, Rig, retry_policy, wait_for

seen: list[Any] = []
release = gevent.event.Event()


@pytest.fixture(autouse=True)
def fresh() -> None:
    seen.clear()
    release.clear()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.002)


class Scripted:
    """Does what the message body says."""

    def consume(self, amqp: Any, msg: Any) -> None:
        seen.append((msg.body, msg.redelivered))
        if msg.body == b"twice":
            amqp.ack()
            try:
                amqp.ack()
            except AlreadyAnswered:
                seen.append("AlreadyAnswered")
        elif msg.body == b"ack then raise":
            amqp.ack()
            raise RuntimeError("after answering")
        elif msg.body == b"nack":
            amqp.nack(requeue=False)
        elif msg.body == b"fail":
            raise ValueError("always fails")
        elif msg.body == b"hold":
            release.wait()

    def shutdown(self, exception: BaseException | None = None) -> None:
        seen.append(("shutdown", type(exception).__name__ if exception else None))


@pytest.mark.parametrize(
    "body,expected",
    [
        (b"plain", [("ack", False)]),
        (b"twice", [("ack", False)]),
        (b"ack then raise", [("ack", False)]),
        (b"nack", [("nack", False)]),
    ],
)
def test_every_message_is_answered_exactly_once(body: bytes, expected: list[tuple[str, bool]]) -> None:
    rig = Rig(Scripted)
    try:
        rig.send(1, body)
        wait_for(lambda: rig.settled(1))
        rig.send(2)  # a later message proves the first has no late second answer pending
        wait_for(lambda: rig.settled(2))
        assert rig.settled(1) == expected
        if body == b"twice":
            assert "AlreadyAnswered" in seen
    finally:
        rig.close()


def test_requeue_puts_a_failed_message_back_and_it_comes_again_redelivered() -> None:
    rig = Rig(Scripted, on_error=Requeue())
    try:
        rig.send(1, b"fail")
        wait_for(lambda: len(rig.settled(1)) >= 2)
        assert rig.settled(1)[:2] == [("reject", True), ("reject", True)]
        assert seen[:2] == [(b"fail", False), ("shutdown", "ValueError")]
        assert (b"fail", True) in seen, "the broker marks the second delivery redelivered"
    finally:
        rig.close()


def test_reject_sends_a_failed_message_to_the_dead_letter_exchange() -> None:
    rig = Rig(Scripted, on_error=Reject())
    try:
        rig.send(1, b"fail")
        wait_for(lambda: rig.ready("dead"))
        assert rig.settled(1) == [("reject", False)]
        assert [message.body for message in rig.ready("dead")] == [b"fail"]
    finally:
        rig.close()


def test_retry_moves_a_copy_through_the_delay_queue_then_parks_it_with_its_provenance() -> None:
    rig = Rig(Scripted, on_error=retry_policy(max_attempts=2))
    try:
        rig.send(1, b"fail")
        wait_for(lambda: rig.ready("q.retry.1s"))
        (waiting,) = rig.ready("q.retry.1s")
        assert waiting.properties["headers"][policy.ATTEMPTS] == 1
        assert rig.settled(1) == [("ack", False)], "the original is acked once its copy is confirmed"
        # The delay queue's TTL is the broker's; here the test plays it, as the test kit's clock will.
        rig.broker.queues["q.retry.1s"].ready.clear()
        rig.broker.publish("", "q", waiting.body, waiting.properties)
        wait_for(lambda: rig.ready("q.parked"))
        (parked,) = rig.ready("q.parked")
        headers = parked.properties["headers"]
        assert headers[policy.ATTEMPTS] == 2 and headers[policy.QUEUE] == "q"
        assert headers[policy.EXCEPTION_TYPE] == "builtins.ValueError"
        assert headers[policy.EXCEPTION_MESSAGE] == "always fails"
        assert headers[policy.CONSUMER] == "tests.runtime.test_answers:Scripted"
        assert rig.ready("q") == []
    finally:
        rig.close()


def test_a_retry_whose_copy_cannot_be_published_requeues_the_original() -> None:
    rig = Rig(Scripted, on_error=retry_policy())
    rig.broker.nacking = True  # the broker refuses every published copy
    try:
        rig.send(1, b"fail")
        wait_for(lambda: rig.settled(1))
        assert rig.settled(1)[0] == ("reject", True), "nothing is lost: the original goes back"
        assert rig.ready("q.retry.1s") == []
    finally:
        rig.close()


def test_a_failing_instance_is_replaced_after_a_backoff_that_doubles_and_resets_on_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[int] = []
    original = pool_module.backoff
    monkeypatch.setattr(pool_module, "backoff", lambda failures: waits.append(failures) or original(failures))
    rig = Rig(Scripted, on_error=Reject())
    try:
        for number, body in enumerate([b"fail", b"fail", b"fail", b"ok", b"fail"], start=1):
            rig.send(number, body)
        wait_for(lambda: rig.settled(5))
        assert waits == [1, 2, 3, 1], "each failure in a row waits longer; a success starts over"
        shutdowns = [event for event in seen if isinstance(event, tuple) and event[0] == "shutdown"]
        assert shutdowns == [("shutdown", "ValueError")] * 4, "each failed instance is shut down with its error"
    finally:
        rig.close()


def test_stop_returns_unstarted_messages_and_lets_the_one_in_hand_finish() -> None:
    rig = Rig(Scripted, prefetch=10)
    try:
        rig.send(1, b"hold")
        for number in range(2, 6):
            rig.send(number)
        wait_for(lambda: (b"hold", False) in seen)
        wait_for(lambda: len(rig.broker.queues["q"].ready) == 0)  # all five prefetched
        rig.pool.stop()
        assert rig.pool.wait_idle(0, gevent.event.Event()) is False, "one message is still in hand"
        assert all(rig.settled(number) == [("nack", True)] for number in range(2, 6)), "unstarted ones go back"
        release.set()
        assert rig.pool.wait_idle(5, gevent.event.Event()) is True
        assert rig.settled(1) == [("ack", False)]
        assert [message.redelivered for message in rig.ready("q")] == [True] * 4
    finally:
        release.set()
        rig.close()


def test_an_answer_for_a_message_whose_channel_closed_is_never_sent_on_the_new_one() -> None:
    rig = Rig(Scripted)
    try:
        rig.send(1, b"hold")
        wait_for(lambda: (b"hold", False) in seen)
        old = rig.pool._channel
        rig.connection.close_by_broker(ConnectionLost("320 CONNECTION_FORCED"))
        rig.pool.detach()
        rig.connection = rig.transport.connect(SETTINGS, name="test")
        rig.pool.attach(rig.connection)
        assert rig.pool._channel is not old
        release.set()
        wait_for(lambda: rig.settled(1))
        assert rig.settled(1) == [("ack", False)], "answered once, on the channel that holds it now"
        assert seen.count((b"hold", True)) == 1, "the broker redelivered it, and the stale ack was dropped"
    finally:
        release.set()
        rig.close()


def test_an_error_policy_that_is_not_one_of_the_three_is_refused_when_the_entry_is_built() -> None:
    """A package generated by another version, or a hand-built service, says what to do."""
    with pytest.raises(TypeError, match=r"Requeue\(\), Reject\(\) or Retry\(...\), not 'requeue'.*rebuild"):
        ConsumerEntry(consumer=Scripted, queue="q", consumer_count=1, prefetch_count=1, on_error="requeue")  # type: ignore[arg-type]
