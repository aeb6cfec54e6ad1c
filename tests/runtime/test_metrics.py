"""The per-message counts (runtime/metrics.py, EntryMetrics): every delivery lands in the bucket
Prometheus' `le` says, for its time in queue and its handling time, whatever the values.

The counting is inlined for speed (a first bucket found without a search); these tests hold it
to `Histogram.observe`, the plain form, on generated values: negative waits (clocks that
disagree), timestamps in milliseconds, values on a bucket's bound, and days.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import metrics as metrics_module
from amqp_dispatcher.runtime.message import Message
from amqp_dispatcher.runtime.metrics import HANDLER_BUCKETS, QUEUE_BUCKETS, EntryMetrics, Histogram

NOW = 1_800_000_000.0  # a wall-clock second, as time.time() gives it
# Values on every bound and around it, and anywhere else.
WAITS = st.one_of(st.sampled_from([0.0, *QUEUE_BUCKETS]), st.floats(-3600.0, 10 * 86400.0))
DURATIONS = st.one_of(st.sampled_from([0.0, *HANDLER_BUCKETS]), st.floats(0.0, 3600.0))


def stamped(waited: float, milliseconds: bool) -> Message:
    """A message whose AMQP timestamp (whole seconds, or milliseconds as some producers write) is `waited` ago."""
    stamp = NOW - waited
    return Message(b"", {"timestamp": int(stamp * 1000 if milliseconds else stamp)}, {"delivery_tag": 1})


@given(waited=WAITS, milliseconds=st.booleans(), duration=DURATIONS, outcome=st.sampled_from(["ack", None]))
def test_each_delivery_lands_in_the_bucket_observe_would_choose(
    waited: float, milliseconds: bool, duration: float, outcome: str | None
) -> None:
    message = stamped(waited, milliseconds)
    clock = iter([100.0, 100.0 + duration])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_module, "_now", lambda: NOW)
        patch.setattr(metrics_module, "_clock", lambda: next(clock))
        counted = EntryMetrics()
        counted.answered(outcome, counted.delivered(message))

    stamp = message.timestamp
    assert stamp is not None
    queue_time, handler = Histogram(QUEUE_BUCKETS), Histogram(HANDLER_BUCKETS)
    queue_time.observe(max(0.0, NOW - (stamp / 1000 if milliseconds else stamp)))
    handler.observe((100.0 + duration) - 100.0)
    assert (counted.queue_time.counts, counted.queue_time.total) == (queue_time.counts, queue_time.total)
    assert (counted.handler.counts, counted.handler.total) == (handler.counts, handler.total)
    assert counted.received == 1
    assert sum(counted.settled.values()) == (outcome is not None)


def test_a_message_without_a_timestamp_counts_no_time_in_queue() -> None:
    counted = EntryMetrics()
    counted.answered("ack", counted.delivered(Message(b"", {}, {"delivery_tag": 1})))
    assert sum(counted.queue_time.counts) == 0 and counted.received == 1
    assert sum(counted.handler.counts) == 1 and counted.settled["ack"] == 1
