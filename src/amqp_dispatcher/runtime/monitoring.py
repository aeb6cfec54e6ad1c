"""Monitoring: a running service's counts and health, wired to its parts.

Owns giving the pools, the supervisor and the publisher their counters, and answering, from
them, what is not ready (health.py), who the service is (health.py) and what the counts are
(a snapshot, snapshot.py). A process serves those on its own HTTP endpoint, or, as one worker
of several, reports them to its parent (worker.py), which serves the whole service's. Knows
nothing of HTTP or of the exposition format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import health, snapshot
from .endpoint import HttpEndpoint
from .metrics import EntryMetrics, Exposition, ServiceMetrics
from .pool import ConsumerPool
from .publisher import Publisher
from .spec import Http, LiveService
from .supervisor import ConnectionSupervisor


class Monitoring:
    """The service-wide counts of one process, and what they say."""

    def __init__(
        self,
        service: LiveService,
        pools: Sequence[ConsumerPool],
        supervisor: ConnectionSupervisor,
        publisher: Publisher,
        *,
        generator: str | None,
    ) -> None:
        self.metrics = ServiceMetrics()
        for pool in pools:
            pool.metrics = EntryMetrics()
        supervisor.metrics = publisher.metrics = self.metrics
        self.service, self.generator = service, generator
        self._pools, self._supervisor, self._publisher = pools, supervisor, publisher

    def __repr__(self) -> str:
        return f"<Monitoring {self.service.name}>"

    def not_ready(self) -> list[str]:
        return health.not_ready(self._supervisor, self._pools, self._publisher)

    def info(self) -> dict[str, Any]:
        return health.info(self.service, self.generator)

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.take(self._pools, self.metrics, self._states)

    def endpoint(self, address: Http) -> HttpEndpoint:
        """An endpoint that serves this process's answers."""
        exposition = Exposition(self.service, self.snapshot)
        return HttpEndpoint(address, ready=self.not_ready, info=self.info, metrics=exposition.render)

    def _states(self) -> dict[str, float]:
        return {
            "consuming_open": float(self._supervisor.is_connected),
            "publishing_open": float(self._publisher.is_connected),
            "publishing_blocked": float(self._publisher.is_blocked),
        }
