"""Snapshots of the counts: what /metrics renders, and what a worker process reports to its parent.

Owns the shape of a snapshot (plain lists, dicts and numbers, so that it crosses a pipe as one
JSON line), taking one from a running process (take), and adding up those of several worker
processes (merge). Counts add up, the ones of workers that have ended included, so that no
counter of the whole service ever goes down when a worker is replaced; states describe the
workers running now: instances and messages in flight add up, a consumer or a connection is
live only if it is live in every worker, and publishing is blocked if it is blocked in any.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypedDict

from .metrics import HANDLER_BUCKETS, OUTCOMES, PUBLISH_BUCKETS, PUBLISH_OUTCOMES, QUEUE_BUCKETS, Histogram

if TYPE_CHECKING:
    from .metrics import EntryMetrics, ServiceMetrics
    from .pool import ConsumerPool


class HistogramState(TypedDict):
    counts: list[int]  # per bucket, not cumulative; the last one is +Inf
    total: float


class EntryState(TypedDict):
    received: int
    settled: dict[str, int]
    handler: HistogramState
    queue_time: HistogramState
    replacements: int
    cancels: int
    in_flight: int
    live: int
    consuming: int


class ServiceState(TypedDict):
    reconnects: int
    hub_blocked: int
    publishes: dict[str, int]
    publish_duration: HistogramState
    worker_restarts: int
    consuming_open: int
    publishing_open: int
    publishing_blocked: int
    workers: int


class Snapshot(TypedDict):
    entries: list[EntryState]  # in the order of the service's consumer entries
    service: ServiceState


# How each number of several workers adds up; a name in none of these is a histogram or a dict of counts.
_COUNTS = frozenset({"received", "replacements", "cancels", "reconnects", "hub_blocked", "worker_restarts"})
_SUMMED_STATES = frozenset({"in_flight", "live", "workers"})
_ALL_OF = frozenset({"consuming", "consuming_open", "publishing_open"})
_ANY_OF = frozenset({"publishing_blocked"})
_DICTS = frozenset({"settled", "publishes"})


def take(pools: Sequence[ConsumerPool], counts: ServiceMetrics, states: Callable[[], dict[str, float]]) -> Snapshot:
    """This process's counts and states, now."""
    now = states()
    return {
        "entries": [_entry(pool, pool.metrics) for pool in pools],
        "service": {
            "reconnects": counts.reconnects,
            "hub_blocked": counts.hub_blocked,
            "publishes": dict(counts.publishes),
            "publish_duration": _histogram(counts.publish_duration),
            "worker_restarts": 0,
            "consuming_open": int(now["consuming_open"]),
            "publishing_open": int(now["publishing_open"]),
            "publishing_blocked": int(now["publishing_blocked"]),
            "workers": 1,
        },
    }


def empty(entries: int) -> Snapshot:
    """Nothing counted, nothing live: what a service whose workers have not reported adds up to."""
    return {
        "entries": [_empty_entry() for _ in range(entries)],
        "service": {
            "reconnects": 0,
            "hub_blocked": 0,
            "publishes": dict.fromkeys(PUBLISH_OUTCOMES, 0),
            "publish_duration": _zeros(PUBLISH_BUCKETS),
            "worker_restarts": 0,
            "consuming_open": 0,
            "publishing_open": 0,
            "publishing_blocked": 0,
            "workers": 0,
        },
    }


def retire(snapshot: Snapshot) -> Snapshot:
    """The counts of a worker that has ended, with its states zeroed: it holds nothing any more."""
    retired = _copy(snapshot)
    for section in (*retired["entries"], retired["service"]):
        for name in _SUMMED_STATES | _ALL_OF | _ANY_OF:
            if name in section:
                section[name] = 0  # type: ignore[literal-required]
    return retired


def merge(running: Sequence[Snapshot], retired: Snapshot) -> Snapshot:
    """The whole service: `retired` (the counts of workers that ended) plus the running workers."""
    total = _copy(retired)
    for section in (*total["entries"], total["service"]):
        for name in _ALL_OF:
            if name in section:
                section[name] = int(bool(running))  # type: ignore[literal-required]
    for snapshot in running:
        parts = (*snapshot["entries"], snapshot["service"])
        for into, part in zip((*total["entries"], total["service"]), parts, strict=True):
            _add(into, part)  # type: ignore[arg-type]
    return total


def conforms(report: object, entries: int) -> bool:
    """Whether `report` has exactly the shape of a snapshot of `entries` consumer entries (the same
    keys, numbers where numbers are, buckets of the same lengths): what a parent takes from a
    worker, which may be of another build."""
    return _same_shape(report, empty(entries))


def _same_shape(value: object, model: object) -> bool:
    if isinstance(model, dict):
        return (
            isinstance(value, dict)
            and value.keys() == model.keys()
            and all(_same_shape(value[key], model[key]) for key in model)
        )
    if isinstance(model, list):
        return (
            isinstance(value, list)
            and len(value) == len(model)
            and all(_same_shape(item, part) for item, part in zip(value, model, strict=True))
        )
    if isinstance(model, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _add(into: dict[str, object], part: dict[str, object]) -> None:
    for name, value in part.items():
        if name in _COUNTS or name in _SUMMED_STATES:
            into[name] = int(into[name]) + int(value)  # type: ignore[call-overload]
        elif name in _ALL_OF:
            into[name] = min(int(into[name]), int(value))  # type: ignore[call-overload]
        elif name in _ANY_OF:
            into[name] = max(int(into[name]), int(value))  # type: ignore[call-overload]
        elif name in _DICTS:
            mine, theirs = into[name], value
            assert isinstance(mine, dict) and isinstance(theirs, dict)
            for key, number in theirs.items():
                mine[key] = mine.get(key, 0) + number
        else:  # a histogram
            mine, theirs = into[name], value
            assert isinstance(mine, dict) and isinstance(theirs, dict)
            mine["counts"] = [a + b for a, b in zip(mine["counts"], theirs["counts"], strict=True)]
            mine["total"] = mine["total"] + theirs["total"]


def _entry(pool: ConsumerPool, counts: EntryMetrics | None) -> EntryState:
    if counts is None:
        return _empty_entry()
    return {
        "received": counts.received,
        "settled": dict(counts.settled),
        "handler": _histogram(counts.handler),
        "queue_time": _histogram(counts.queue_time),
        "replacements": counts.replacements,
        "cancels": counts.cancels,
        "in_flight": pool.in_flight,
        "live": pool.live_instances,
        "consuming": int(pool.is_consuming),
    }


def _empty_entry() -> EntryState:
    return {
        "received": 0,
        "settled": dict.fromkeys(OUTCOMES, 0),
        "handler": _zeros(HANDLER_BUCKETS),
        "queue_time": _zeros(QUEUE_BUCKETS),
        "replacements": 0,
        "cancels": 0,
        "in_flight": 0,
        "live": 0,
        "consuming": 0,
    }


def _histogram(histogram: Histogram) -> HistogramState:
    return {"counts": list(histogram.counts), "total": histogram.total}


def _zeros(bounds: Sequence[float]) -> HistogramState:
    return {"counts": [0] * (len(bounds) + 1), "total": 0.0}


def _copy(snapshot: Snapshot) -> Snapshot:
    return copy.deepcopy(snapshot)
