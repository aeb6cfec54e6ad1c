"""A fleet: five replicas of the service (five `python -m service` processes) on one queue.

They share the work fairly (the broker's round-robin, not who started first), and after a broker
restart they do not come back in lockstep: each reconnects after its own exponential backoff
with full jitter (runtime/supervisor.py).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pika
import pytest

from tests.integration.cluster_broker import Cluster, publish_confirmed, start_cluster
from tests.integration.harness import PORT, Project, Service, drain, wait_until
from tests.integration.private_node import require_tools

from .conftest import account

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPLICAS = 5
MESSAGES = 20_000
FAIR = 0.25  # each replica's share within ±25% of the mean

CONFIG = """
shutdown_timeout: 10
consumers:
  - consumer: workers:Tally
    queue: work
    consumer_count: 2
    prefetch_count: 10
queues:
  - queue: work
"""


def start_fleet(built: Project, services: list[Service], vhost: str | None, **environment: str) -> list[Service]:
    """Five replicas, started together; returns once each is ready."""
    fleet = [built.service(vhost, **environment) for _ in range(REPLICAS)]
    services.extend(fleet)
    for replica in fleet:
        replica.wait_ready(timeout=60)
    return fleet


def consumers_on(port: int, vhost: str, queue: str = "work") -> int:
    parameters = pika.ConnectionParameters("127.0.0.1", port, virtual_host=vhost)
    connection = pika.BlockingConnection(parameters)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def bodies(built: Project) -> list[str]:
    return [event["body"] for event in built.events("done")]


def done_by(built: Project) -> Counter[int]:
    """How many messages each process finished."""
    return Counter(event["pid"] for event in built.events("done"))


def log_times(service: Service, text: str) -> list[float]:
    return [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in service.log.splitlines()
        if text in line
    ]


def test_10a_five_replicas_share_the_queue_fairly(project, services, vhost) -> None:
    built = project(CONFIG)
    fleet = start_fleet(built, services, vhost)
    wait_until(lambda: consumers_on(PORT, vhost) == REPLICAS, message="all five consumers registered")
    ids = [f"share-{n:05d}" for n in range(MESSAGES)]
    # 5 ms a message (gevent.sleep), 2 at a time: each replica is bound by its handlers, not by
    # the two cores the five share, so the shares measure the broker's round-robin.
    publish_confirmed(PORT, vhost, "work", ids, headers={"sleep": "0.005"})
    wait_until(lambda: set(ids) <= set(bodies(built)), timeout=120, message="every message processed")
    assert all(replica.stop() == 0 for replica in fleet)
    shares = done_by(built)  # by the pid of the process that consumed: five of them
    mean = statistics.mean(shares.values())
    deviations = [share / mean - 1 for share in shares.values()]
    summary = account(
        "10a",
        "fleet: five replicas on one queue, prefetch 10",
        ids,
        bodies(built),
        queued=[body.decode() for _, _, body in drain(vhost, "work")],
        note=(
            f"shares {', '.join(str(share) for share in shares.values())} "
            f"(at most {max(map(abs, deviations)):.1%} from the mean)"
        ),
    )
    assert summary.lost == 0 and summary.processed == MESSAGES
    assert len(shares) == REPLICAS, f"each replica consumed: {dict(shares)}"
    assert all(abs(deviation) <= FAIR for deviation in deviations), f"shares {dict(shares)}, mean {mean:.0f}"


@pytest.fixture
def single_node(tmp_path_factory: pytest.TempPathFactory, broker: None) -> Iterator[Cluster]:
    require_tools("a private node")
    with start_cluster(tmp_path_factory.mktemp("node"), size=1) as node:
        yield node


def test_10b_after_a_broker_restart_the_replicas_reconnect_apart(project, services, single_node: Cluster) -> None:
    built = project(CONFIG)
    node = single_node.nodes[0]
    fleet = start_fleet(built, services, None, RABBITMQ_URL=single_node.url())
    wait_until(lambda: consumers_on(node.port, "/") == REPLICAS, message="all five consumers registered")
    stopped = time.time()
    single_node.stop_node(node)
    single_node.start_node(node)
    for replica in fleet:
        replica.wait_for_log("consuming again on", timeout=90)
    reconnects = [min(t for t in log_times(replica, "consuming again on") if t >= stopped) for replica in fleet]
    spread = max(reconnects) - min(reconnects)
    # Each replica consumes again: 1,000 messages, published once all five are back, reach each.
    ids = [f"again-{n:04d}" for n in range(1000)]
    wait_until(lambda: consumers_on(node.port, "/") == REPLICAS, message="all five consumers registered again")
    publish_confirmed(node.port, "/", "work", ids, headers={"sleep": "0.005"})
    wait_until(lambda: set(ids) <= set(bodies(built)), timeout=60, message="every message processed")
    shares = done_by(built)
    assert all(replica.stop() == 0 for replica in fleet)
    after_first = sorted(t - min(reconnects) for t in reconnects)
    account(
        "10b",
        "fleet: five replicas through a broker restart",
        ids,
        bodies(built),
        note=(
            f"the first consuming again {min(reconnects) - stopped:.1f} s after the stop, the others "
            f"{', '.join(f'{t:+.2f}' for t in after_first[1:])} s after it: spread {spread:.2f} s"
        ),
    )
    assert len(shares) == REPLICAS, f"each replica consumes again: {dict(shares)}"
    assert spread > 0.05, f"the five reconnected within {spread * 1000:.0f} ms of one another: in lockstep"
