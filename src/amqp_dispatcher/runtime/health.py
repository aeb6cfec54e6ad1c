"""What /readyz and /info say about a running service.

Owns the meaning of ready: the consuming connection is open, **every** consumer entry holds a
live consumer (consume-ok seen, not cancelled by the broker, its channel open), and the
publishing connection, if open, is not blocked by the broker; anything else is named, one
line each. Owns the identity /info reports: the service, its config's sha256, the versions that
built and run it, and the consumer entries with their queues. Knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .interface import INTERFACE
from .pool import ConsumerPool, consumer_name
from .publisher import Publisher
from .spec import LiveEntry, LiveService, Reject, Requeue, Retry
from .supervisor import ConnectionSupervisor
from .version import VERSION


def not_ready(supervisor: ConnectionSupervisor, pools: Sequence[ConsumerPool], publisher: Publisher) -> list[str]:
    """What keeps the service from being ready; empty when it is."""
    problems = []
    if not supervisor.is_connected:
        problems.append("the consuming connection is not open")
    for pool in pools:
        if pool.is_stopping:
            problems.append(f"consumer {pool.name} on queue {pool.entry.queue!r} is stopping")
        elif not pool.is_consuming:
            problems.append(f"consumer {pool.name} on queue {pool.entry.queue!r} holds no live consumer")
    if publisher.is_blocked:
        problems.append("the broker blocks the publishing connection (connection.blocked)")
    return problems


def info(service: LiveService, generator: str | None, processes: int = 1) -> dict[str, Any]:
    return {
        "service": service.name,
        "config_sha256": service.config_sha256,
        "generator": {"name": "dispatcher-build", "version": generator},
        "runtime": {"name": "amqp-dispatcher", "version": VERSION, "interface": INTERFACE},
        "processes": processes,
        "consumers": [
            {
                "consumer": consumer_name(entry),
                "queue": entry.queue,
                "consumer_count": entry.consumer_count,
                "prefetch_count": entry.prefetch_count,
                "on_error": _policy(entry),
            }
            for entry in service.consumers
        ],
    }


def _policy(entry: LiveEntry) -> str:
    match entry.on_error:
        case Retry():
            return "retry"
        case Reject():
            return "reject"
        case Requeue():
            return "requeue"
