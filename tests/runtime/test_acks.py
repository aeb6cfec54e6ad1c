"""Coalesced acknowledgements (runtime/acks.py): the frames settle exactly what the service
answered, each tag once, never one it did not answer, whatever the order of deliveries and
answers; and a channel's held acks leave at the hub's next turn, or at once when half the
prefetch window waits, and never after the channel closed."""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.acks import AckCoalescer, Frame, HeldAcks


@dataclass
class BrokerChannel:
    """What RabbitMQ does with the frames of one channel: unknown tags close it (406)."""

    unacked: set[int] = field(default_factory=set)
    settled: dict[int, str] = field(default_factory=dict)  # tag -> how, by the frame that settled it

    def receive(self, frames: list[Frame]) -> None:
        for frame in frames:
            assert frame.tag in self.unacked, f"PRECONDITION_FAILED - unknown delivery tag {frame.tag}"
            if frame.how == "ack" and frame.multiple:
                covered = {tag for tag in self.unacked if tag <= frame.tag}
            else:
                covered = {frame.tag}
            for tag in covered:
                self.unacked.remove(tag)
                self.settled[tag] = frame.how
            assert frame.how == "ack" or not frame.multiple


def test_a_run_of_acks_is_one_multiple_ack() -> None:
    acks = AckCoalescer()
    for tag in range(1, 6):
        acks.delivered(tag)
    for tag in range(1, 6):
        acks.ack(tag)
    assert acks.flush() == [Frame("ack", 5, multiple=True)]
    assert acks.flush() == []


def test_a_single_ack_is_not_multiple() -> None:
    acks = AckCoalescer()
    acks.delivered(1)
    acks.ack(1)
    assert acks.flush() == [Frame("ack", 1)]


def test_a_nack_in_the_middle_splits_the_run() -> None:
    acks = AckCoalescer()
    for tag in range(1, 7):
        acks.delivered(tag)
    for tag in (1, 2, 3):
        acks.ack(tag)
    assert acks.answer("nack", 4, requeue=False) == [Frame("ack", 3, multiple=True), Frame("nack", 4)]
    acks.ack(5)
    acks.ack(6)
    assert acks.flush() == [Frame("ack", 6, multiple=True)]


def test_a_reject_before_acks_goes_alone_and_the_acks_cross_it_later() -> None:
    acks = AckCoalescer()
    for tag in range(1, 4):
        acks.delivered(tag)
    assert acks.answer("reject", 1, requeue=True) == [Frame("reject", 1, requeue=True)]
    acks.ack(2)
    acks.ack(3)
    assert acks.flush() == [Frame("ack", 3, multiple=True)]


def test_acks_above_a_delivery_in_hand_go_alone_and_the_run_resumes_when_it_is_answered() -> None:
    acks = AckCoalescer()
    for tag in range(1, 7):
        acks.delivered(tag)
    for tag in (1, 2, 4, 5):
        acks.ack(tag)
    assert acks.flush() == [Frame("ack", 2, multiple=True), Frame("ack", 4), Frame("ack", 5)]
    acks.ack(3)
    acks.ack(6)
    # 4 and 5 are settled already: the multiple ack crosses them and names 6, not yet sent.
    assert acks.flush() == [Frame("ack", 6, multiple=True)]


def test_a_gap_in_the_numbering_is_never_crossed() -> None:
    acks = AckCoalescer()
    for tag in (1, 2, 4, 5):  # 3 never reached this class (pika dropped it)
        acks.delivered(tag)
    for tag in (1, 2, 4, 5):
        acks.ack(tag)
    assert acks.flush() == [Frame("ack", 2, multiple=True), Frame("ack", 4), Frame("ack", 5)]
    acks.delivered(6)
    acks.delivered(7)
    acks.ack(6)
    acks.ack(7)
    assert acks.flush() == [Frame("ack", 6), Frame("ack", 7)]


def test_the_threshold_asks_for_a_flush() -> None:
    acks = AckCoalescer(threshold=3)
    for tag in range(1, 4):
        acks.delivered(tag)
    assert [acks.ack(tag) for tag in (1, 2, 3)] == [False, False, True]
    assert acks.waiting == 3


def test_forget_sends_nothing_afterwards() -> None:
    acks = AckCoalescer()
    acks.delivered(1)
    acks.ack(1)
    acks.forget()
    assert acks.flush() == []


ANSWERS = st.sampled_from(["ack", "ack", "ack", "nack", "reject", None])
# How a delivery reaches the coalescer: seen; rejected by pika itself (a cancelled consumer's,
# written before anything later); or dropped unseen and unsettled (pika's "unexpected delivery").
ARRIVALS = st.sampled_from(["seen", "seen", "seen", "seen", "rejected by pika", "dropped"])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_interleaving_settles_exactly_what_was_answered(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 40), label="deliveries")
    arrivals = data.draw(st.lists(ARRIVALS, min_size=count, max_size=count), label="arrivals")
    answers = data.draw(st.lists(ANSWERS, min_size=count, max_size=count), label="answers")
    acks = AckCoalescer(threshold=data.draw(st.integers(1, 12), label="threshold"))
    broker = BrokerChannel()
    answered: dict[int, str] = {}
    waiting: list[int] = []  # seen, not answered yet, and to be answered
    next_tag = 1
    while next_tag <= count or waiting:
        choices = (["deliver"] if next_tag <= count else []) + (["answer"] if waiting else []) + ["flush"]
        step = data.draw(st.sampled_from(choices))
        if step == "deliver":
            tag, arrival = next_tag, arrivals[next_tag - 1]
            next_tag += 1
            broker.unacked.add(tag)
            if arrival == "rejected by pika":
                broker.receive([Frame("reject", tag, requeue=True)])
            elif arrival == "seen":
                acks.delivered(tag)
                if answers[tag - 1] is not None:
                    waiting.append(tag)
        elif step == "answer":
            tag = waiting.pop(data.draw(st.integers(0, len(waiting) - 1)))
            how = answers[tag - 1]
            assert how is not None
            answered[tag] = how
            if how == "ack":
                if acks.ack(tag):
                    broker.receive(acks.flush())
            else:
                broker.receive(acks.answer(how, tag, requeue=data.draw(st.booleans())))
                assert broker.settled[tag] == how  # a nack or reject is never held back
        else:
            broker.receive(acks.flush())
        # Never a tag it did not answer, never another answer than the service's.
        ours = {tag: how for tag, how in broker.settled.items() if arrivals[tag - 1] == "seen"}
        assert all(answered.get(tag) == how for tag, how in ours.items())
    broker.receive(acks.flush())
    assert acks.waiting == 0
    ours = {tag: how for tag, how in broker.settled.items() if arrivals[tag - 1] == "seen"}
    assert ours == answered
    unanswered = {tag for tag in range(1, count + 1) if arrivals[tag - 1] != "rejected by pika"} - set(answered)
    assert broker.unacked == unanswered


class WritingChannel(HeldAcks):
    """The settling half of a channel, writing its frames to a list, as both transports do to the wire."""

    def __init__(self, prefetch_count: int) -> None:
        self._hold_acks()
        self._ack_window(prefetch_count)
        self.open = True
        self.written: list[Frame] = []

    @property
    def is_open(self) -> bool:
        return self.open

    def _send(self, frames: list[Frame]) -> bool:
        self.written.extend(frames)
        return True

    def deliver(self, *tags: int) -> None:
        for tag in tags:
            self._acks.delivered(tag)

    def close(self) -> None:
        self.open = False
        self._acks.forget()


def test_held_acks_leave_as_one_frame_at_the_hubs_next_turn() -> None:
    channel = WritingChannel(prefetch_count=100)
    channel.deliver(1, 2, 3)
    assert all(channel.settle(tag, "ack") for tag in (1, 2, 3))
    assert channel.written == []
    gevent.sleep(0)
    assert channel.written == [Frame("ack", 3, multiple=True)]


def test_half_the_prefetch_window_waiting_leaves_without_waiting_for_the_hub() -> None:
    channel = WritingChannel(prefetch_count=4)
    channel.deliver(1, 2, 3)
    channel.settle(1, "ack")
    assert channel.written == []
    channel.settle(2, "ack")
    assert channel.written == [Frame("ack", 2, multiple=True)]


def test_a_nack_leaves_at_once_after_the_acks_waiting() -> None:
    channel = WritingChannel(prefetch_count=100)
    channel.deliver(1, 2)
    channel.settle(1, "ack")
    channel.settle(2, "nack", requeue=True)
    assert channel.written == [Frame("ack", 1), Frame("nack", 2, requeue=True)]


def test_acks_held_when_the_channel_closes_are_never_written() -> None:
    channel = WritingChannel(prefetch_count=100)
    channel.deliver(1, 2)
    assert channel.settle(1, "ack")
    channel.close()
    gevent.sleep(0)
    assert channel.written == []
    assert channel.settle(2, "ack") is False
    assert channel.settle(2, "reject") is False
    channel.flush()
    assert channel.written == []


def test_a_channel_closing_sends_nothing_even_before_its_held_acks_are_forgotten() -> None:
    """pika's channel is closing (not open) before the broker's close-ok makes it forget them."""
    channel = WritingChannel(prefetch_count=100)
    channel.deliver(1)
    channel.settle(1, "ack")
    channel.open = False
    gevent.sleep(0)
    channel.flush()
    assert channel.written == []
    assert channel._acks.waiting == 1


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_channel_settles_what_was_answered_whatever_the_hubs_turns(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 30), label="deliveries")
    channel = WritingChannel(prefetch_count=data.draw(st.integers(0, 20), label="prefetch"))
    broker = BrokerChannel()
    channel.deliver(*range(1, count + 1))
    broker.unacked.update(range(1, count + 1))
    answered: dict[int, str] = {}
    for tag in data.draw(st.permutations(range(1, count + 1)), label="order"):
        how = data.draw(ANSWERS, label=f"answer {tag}")
        if how is not None:
            channel.settle(tag, how, requeue=False)
            answered[tag] = how
        if data.draw(st.booleans(), label="the hub turns"):
            gevent.sleep(0)
        broker.receive(channel.written)
        channel.written.clear()
        assert all(answered.get(tag) == how for tag, how in broker.settled.items())
    gevent.sleep(0)
    broker.receive(channel.written)
    assert broker.settled == answered
