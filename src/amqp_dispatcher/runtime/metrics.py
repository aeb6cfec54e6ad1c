"""Metrics: counted where things happen, at almost no cost; exposed by prometheus_client.

Owns the vocabulary (every metric's name, type, labels and help text, prefix
`amqp_dispatcher_`, labels `consumer` and `queue` for what belongs to a consumer entry), the
plain counters and bucket arrays that the runtime increments as it works (no locks and no
label lookups on the way: one process, one thread of greenlets), and the collector that turns
them into metric families when /metrics is scraped. The only importer of prometheus_client,
imported only when the endpoint is on; with it off, nothing here is created and the pools
count nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter as _clock
from time import time as _now
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .message import Message
    from .snapshot import HistogramState, ServiceState, Snapshot
    from .spec import LiveService

PREFIX = "amqp_dispatcher"
# Where a message went; `dropped_stale`: its answer could not be sent, the channel had closed.
OUTCOMES = ("ack", "nack", "reject", "requeue", "retry", "parked", "dropped_stale")
PUBLISH_OUTCOMES = ("confirmed", "nacked", "returned", "timeout", "failed")
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# AMQP timestamps are whole seconds: finer buckets would mean nothing.
QUEUE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
_MILLISECONDS = 10**11  # a timestamp this large is milliseconds (year 5138 in seconds): some producers write them
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)


class Histogram:
    """Counts per bucket (`le`, not cumulative until collected) and the sum of what was observed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class EntryMetrics:
    """One consumer entry's counts, incremented by its pool."""

    __slots__ = ("cancels", "handler", "queue_time", "received", "replacements", "settled")

    def __init__(self) -> None:
        self.received = 0
        self.settled = dict.fromkeys(OUTCOMES, 0)
        self.handler = Histogram(HANDLER_BUCKETS)
        self.queue_time = Histogram(QUEUE_BUCKETS)
        self.replacements = 0
        self.cancels = 0

    # delivered() and answered() run for every message: the histograms' observe is inlined, and
    # the first bucket, where a message that waited under a second and a handler that took under
    # a millisecond fall, is found without a search.

    def delivered(self, message: Message) -> float:
        """A delivery reached an instance; its time in queue, if it carries an AMQP timestamp.
        Returns when its handling starts (perf_counter), for answered()."""
        self.received += 1
        stamp = message.timestamp
        if stamp is not None:
            waited = _now() - (stamp if stamp < _MILLISECONDS else stamp / 1000)
            histogram = self.queue_time
            if waited <= QUEUE_BUCKETS[0]:
                histogram.counts[0] += 1
                if waited > 0.0:  # below zero: clocks disagree, or it was stamped within this second
                    histogram.total += waited
            else:
                histogram.counts[bisect_left(histogram.bounds, waited)] += 1
                histogram.total += waited
        return _clock()

    def answered(self, outcome: str | None, started: float) -> None:
        """A delivery whose handling began at `started` (delivered()'s value) went where `outcome` says."""
        seconds = _clock() - started
        if outcome is not None:
            self.settled[outcome] += 1
        histogram = self.handler
        histogram.counts[0 if seconds <= HANDLER_BUCKETS[0] else bisect_left(histogram.bounds, seconds)] += 1
        histogram.total += seconds

    def count(self, outcome: str | None) -> None:
        """Where a delivery went, when its handling was cut short (its worker ended)."""
        if outcome is not None:
            self.settled[outcome] += 1


@dataclass(slots=True)
class ServiceMetrics:
    """The service-wide counts, and where to read what is a state rather than a count."""

    reconnects: int = 0
    hub_blocked: int = 0
    publishes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PUBLISH_OUTCOMES, 0))
    publish_duration: Histogram = field(default_factory=lambda: Histogram(PUBLISH_BUCKETS))


class Exposition:
    """The /metrics body: a collector over a snapshot of the counts, in a registry of its own.

    One process renders its own snapshot, taken at each scrape; the parent of several worker
    processes renders the merge of theirs (merge()). Either way the families are the same."""

    def __init__(self, service: LiveService, snapshot: Callable[[], Snapshot]) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.service = service
        self.snapshot = snapshot
        self._generate = generate_latest
        self.content_type = CONTENT_TYPE_LATEST
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def render(self) -> tuple[bytes, str]:
        return self._generate(self.registry), self.content_type

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from .pool import consumer_name

        snapshot = self.snapshot()
        labels = ["consumer", "queue"]
        received = CounterMetricFamily(
            _name("messages_received"), "Deliveries handed to a consumer instance.", labels=labels
        )
        settled = CounterMetricFamily(
            _name("messages_settled"), "Deliveries answered, by outcome.", labels=[*labels, "outcome"]
        )
        handler = HistogramMetricFamily(
            _name("handler_duration_seconds"), "Time in consume, per delivery.", labels=labels
        )
        queue_time = HistogramMetricFamily(
            _name("time_in_queue_seconds"),
            "From the message's AMQP timestamp property to its delivery (messages without one are not counted).",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(_name("messages_in_flight"), "Deliveries being handled now.", labels=labels)
        live = GaugeMetricFamily(
            _name("instances_live"), "Consumer instances alive (created, not shut down).", labels=labels
        )
        consuming = GaugeMetricFamily(
            _name("consumer_live"),
            "1 while the entry holds a live consumer (consume-ok seen, not cancelled), in every worker process.",
            labels=labels,
        )
        replacements = CounterMetricFamily(
            _name("instance_replacements"),
            "Instances replaced after consume raised or their worker ended.",
            labels=labels,
        )
        cancels = CounterMetricFamily(
            _name("broker_cancels"), "Consumers the broker cancelled (basic.cancel).", labels=labels
        )
        for entry, counts in zip(self.service.consumers, snapshot["entries"], strict=True):
            names = [consumer_name(entry), entry.queue]
            received.add_metric(names, counts["received"])
            for outcome, number in counts["settled"].items():
                settled.add_metric([*names, outcome], number)
            handler.add_metric(names, *_buckets(HANDLER_BUCKETS, counts["handler"]))
            queue_time.add_metric(names, *_buckets(QUEUE_BUCKETS, counts["queue_time"]))
            in_flight.add_metric(names, counts["in_flight"])
            live.add_metric(names, counts["live"])
            consuming.add_metric(names, counts["consuming"])
            replacements.add_metric(names, counts["replacements"])
            cancels.add_metric(names, counts["cancels"])
        yield from (received, settled, handler, queue_time, in_flight, live, consuming, replacements, cancels)
        yield from self._service_families(snapshot["service"], CounterMetricFamily, GaugeMetricFamily)
        duration = HistogramMetricFamily(_name("publish_duration_seconds"), "From publish to the broker's confirm.")
        duration.add_metric([], *_buckets(PUBLISH_BUCKETS, snapshot["service"]["publish_duration"]))
        yield duration

    def _service_families(self, counts: ServiceState, counter: Any, gauge: Any) -> Iterator[Any]:
        reconnects = counter(_name("reconnects"), "Consuming connections opened again after one was lost.")
        reconnects.add_metric([], counts["reconnects"])
        connection = gauge(
            _name("connection_open"), "1 while the connection is open, in every worker process.", labels=["connection"]
        )
        for name in ("consuming", "publishing"):
            connection.add_metric([name], counts[f"{name}_open"])  # type: ignore[literal-required]
        blocked = gauge(_name("connection_blocked"), "1 while the broker blocks a publishing connection.")
        blocked.add_metric([], counts["publishing_blocked"])
        publishes = counter(_name("publishes"), "Messages published, by outcome.", labels=["outcome"])
        for outcome, number in counts["publishes"].items():
            publishes.add_metric([outcome], number)
        hub = counter(_name("hub_blocked"), "Reports of a greenlet blocking the gevent hub past the threshold.")
        hub.add_metric([], counts["hub_blocked"])
        workers = gauge(_name("worker_processes"), "Worker processes running (1 when the service runs as one process).")
        workers.add_metric([], counts["workers"])
        restarts = counter(_name("worker_restarts"), "Worker processes started again after one ended.")
        restarts.add_metric([], counts["worker_restarts"])
        build = gauge(
            _name("build_info"), "1, labelled with what this service runs.", labels=["service", "config_sha256"]
        )
        build.add_metric([self.service.name, self.service.config_sha256], 1)
        yield from (reconnects, connection, blocked, publishes, hub, workers, restarts, build)


def _buckets(bounds: Sequence[float], state: HistogramState) -> tuple[list[tuple[str, int]], float]:
    running, buckets = 0, []
    for bound, count in zip((*(repr(float(b)) for b in bounds), "+Inf"), state["counts"], strict=True):
        running += count
        buckets.append((bound, running))
    return buckets, state["total"]


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"
