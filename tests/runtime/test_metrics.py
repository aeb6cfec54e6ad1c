"""The per-message counts (runtime/metrics.py, EntryMetrics): every delivery lands in the bucket
Prometheus' `le` says, for its time in queue and its handling time, whatever the values.

The counting is inlined for speed (a first bucket found without a search); these tests hold it
to `Histogram.observe`, the plain form, on generated values: negative waits (clocks that
disagree), timestamps in milliseconds, values on a bucket's bound, and days.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime import metrics as metrics_module
from amqp_dispatcher.runtime.message import Message
from amqp_dispatcher.runtime.metrics import HANDLER_BUCKETS, QUEUE_BUCKETS, EntryMetrics, Histogram
from amqp_dispatcher.runtime.pamqp_transport import codec
from amqp_dispatcher.runtime.pamqp_transport.channel import _Delivered

NOW = 1_800_000_000.0  # a wall-clock second, as time.time() gives it
# Values on every bound and around it, and anywhere else.
WAITS = st.one_of(st.sampled_from([0.0, *QUEUE_BUCKETS]), st.floats(-3600.0, 10 * 86400.0))
DURATIONS = st.one_of(st.sampled_from([0.0, *HANDLER_BUCKETS]), st.floats(0.0, 3600.0))


def stamped(waited: float, milliseconds: bool) -> Message:
    """A message whose AMQP timestamp (whole seconds, or milliseconds as some producers write) is `waited` ago."""
    stamp = NOW - waited
    return Message(b"", {"timestamp": int(stamp * 1000 if milliseconds else stamp)}, {"delivery_tag": 1})


@settings(deadline=None)
@given(waited=WAITS, milliseconds=st.booleans(), duration=DURATIONS, outcome=st.sampled_from(["ack", None]))
def test_each_delivery_lands_in_the_bucket_observe_would_choose(
    waited: float, milliseconds: bool, duration: float, outcome: str | None
) -> None:
    message = stamped(waited, milliseconds)
    clock = iter([0.0, duration])  # so that a duration on a bound stays on it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_module, "_now", lambda: NOW)
        patch.setattr(metrics_module, "_clock", lambda: next(clock))
        counted = EntryMetrics()
        counted.answered(outcome, counted.delivered(message))

    stamp = message.timestamp
    assert stamp is not None
    queue_time, handler = Histogram(QUEUE_BUCKETS), Histogram(HANDLER_BUCKETS)
    queue_time.observe(max(0.0, NOW - (stamp / 1000 if milliseconds else stamp)))
    handler.observe(duration)
    assert (counted.queue_time.counts, counted.queue_time.total) == (queue_time.counts, queue_time.total)
    assert (counted.handler.counts, counted.handler.total) == (handler.counts, handler.total)
    assert counted.received == 1
    assert sum(counted.settled.values()) == (outcome is not None)


def test_a_message_without_a_timestamp_counts_no_time_in_queue() -> None:
    counted = EntryMetrics()
    counted.answered("ack", counted.delivered(Message(b"", {}, {"delivery_tag": 1})))
    assert sum(counted.queue_time.counts) == 0 and counted.received == 1
    assert sum(counted.handler.counts) == 1 and counted.settled["ack"] == 1


@pytest.mark.parametrize("stamp", [1_800_000_000, 0, 2**64 - 1, None, True, 1.5, "1800000000"])
def test_the_pamqp_transports_message_reads_its_timestamp_as_every_message_does(stamp: object) -> None:
    """Its own, quicker read (metrics read it for every delivery) agrees with Message's: an
    integer number of seconds, or None for anything else."""
    properties = {} if stamp is None else {"timestamp": stamp}
    delivered = _Delivered(codec.Deliver("ctag1.x", 1, False, "", "q"), properties, b"")
    assert delivered.timestamp == Message(b"", properties, {}).timestamp
    assert delivered.timestamp == (stamp if type(stamp) is int else None)
