"""Monitoring: the HTTP endpoint wired to a running service's parts.

Owns giving the pools, the supervisor and the publisher their counters (nothing is counted
when the endpoint is off), and answering the endpoint's routes from them: readiness and
information (health.py), and metrics (metrics.py). Knows nothing of HTTP or of the exposition
format; the runner decides when the endpoint starts and stops.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import health
from .endpoint import HttpEndpoint
from .metrics import EntryMetrics, Exposition, ServiceMetrics
from .pool import ConsumerPool
from .publisher import Publisher
from .spec import Http, LiveService
from .supervisor import ConnectionSupervisor


class Monitoring:
    """The endpoint and the service-wide counts of one service."""

    def __init__(
        self,
        address: Http,
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
        self._supervisor, self._publisher = supervisor, publisher
        exposition = Exposition(service, pools, self.metrics, self._states)
        self.endpoint = HttpEndpoint(
            address,
            ready=lambda: health.not_ready(supervisor, pools, publisher),
            info=lambda: health.info(service, pools, generator),
            metrics=exposition.render,
        )

    def __repr__(self) -> str:
        return f"<Monitoring {self.endpoint!r}>"

    def _states(self) -> dict[str, float]:
        return {
            "consuming_open": float(self._supervisor.is_connected),
            "publishing_open": float(self._publisher.is_connected),
            "publishing_blocked": float(self._publisher.is_blocked),
        }
