"""`processes: N` against the real broker: one service, several worker processes, one endpoint.

What users rely on: the workers share the queue and each runs the startup handler itself; the
endpoint of the parent describes the whole service (counts add up, ready only when every worker
is); a worker that dies is started again and nothing is lost; a config or refusal status stops
the whole service with it, once; SIGTERM drains every worker, a second one stops them at once;
and a parent killed with SIGKILL leaves no worker consuming behind it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .harness import connections, publish, queue_depth, url, wait_until
from .test_endpoint import free_port

pytestmark = pytest.mark.broker

CONFIG = """
processes: 2
startup_handler: {startup}
shutdown_timeout: {shutdown_timeout}
http:
  port: {port}
  host: 127.0.0.1
consumers:
  - consumer: workers:Tally
    queue: work
    consumer_count: 5
    prefetch_count: 10
queues:
  - queue: work
"""


def config(port: int, *, startup: str = "workers:startup", shutdown_timeout: float = 10) -> str:
    return CONFIG.format(port=port, startup=startup, shutdown_timeout=shutdown_timeout)


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def metric(port: int, name: str, **labels: str) -> float:
    status, body = get(port, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no {name} {labels} in /metrics")


def ready(port: int) -> bool:
    return get(port, "/readyz")[0] == 200


def worker_pids(port: int) -> list[int]:
    status, body = get(port, "/info")
    assert status == 200
    return [worker["pid"] for worker in json.loads(body)["workers"]]


def running(project: Any, services: list[Any], vhost: str, **settings: Any) -> tuple[Any, Any, int]:
    """The project built with CONFIG, its service started and ready on the whole; (built, service, port)."""
    port = free_port()
    built = project(config(port, **settings)).build()
    service = built.service(vhost)
    services.append(service)
    wait_until(lambda: ready(port), 30, message="/readyz 200")
    return built, service, port


def done(built: Any) -> list[str]:
    return [event["body"] for event in built.events("done")]


def test_workers_share_the_queue_run_the_startup_handler_and_one_endpoint_adds_them_up(
    project, services, vhost
) -> None:
    built, service, port = running(project, services, vhost)
    pids = worker_pids(port)
    assert len(set(pids)) == 2 and service.process.pid not in pids
    startups = built.events("startup")
    assert sorted(event["pid"] for event in startups) == sorted(pids), "once in each worker, none in the parent"

    ids = [f"m{number}" for number in range(400)]
    publish(vhost, "work", ids, headers={"sleep": "0.005"})
    wait_until(lambda: set(done(built)) == set(ids), 60, message="every message done")
    by_worker = dict.fromkeys(pids, 0)
    for event in built.events("done"):
        by_worker[event["pid"]] += 1
    assert all(count > 0 for count in by_worker.values()), by_worker
    wait_until(
        lambda: metric(port, "amqp_dispatcher_messages_received_total", queue="work") == 400,
        10,
        message="the workers' counts reported",
    )
    assert metric(port, "amqp_dispatcher_messages_settled_total", queue="work", outcome="ack") == 400
    assert metric(port, "amqp_dispatcher_worker_processes") == 2
    assert metric(port, "amqp_dispatcher_instances_live", queue="work") == 10
    assert metric(port, "amqp_dispatcher_consumer_live", queue="work") == 1

    assert service.stop() == 0
    assert "stopped 2 workers (exit status 0)" in service.log
    assert len(built.events("startup")) == 2


def test_a_killed_worker_is_started_again_and_nothing_is_lost(project, services, vhost) -> None:
    built, service, port = running(project, services, vhost)
    ids = [f"k{number}" for number in range(300)]
    publish(vhost, "work", ids, headers={"sleep": "0.02"})
    wait_until(lambda: len(done(built)) >= 50, 30)
    victim = worker_pids(port)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in worker_pids(port) and None not in worker_pids(port), 30, message="restarted")
    wait_until(lambda: set(done(built)) == set(ids), 60, message="every message done")
    wait_until(lambda: ready(port), 30, message="/readyz 200 again")
    assert metric(port, "amqp_dispatcher_worker_restarts_total") == 1
    assert len(built.events("startup")) == 3, "the new worker ran the startup handler too"
    assert "worker 1 was killed by SIGKILL; starting it again" in service.log
    assert service.stop() == 0
    assert queue_depth(vhost, "work") == 0


def test_a_startup_handler_that_raises_stops_the_service_with_2_once(project, services, vhost) -> None:
    port = free_port()
    built = project(config(port, startup="workers:failing_startup")).build()
    service = built.service(vhost)
    services.append(service)
    assert service.wait(60) == 2
    assert service.log.count("stopping the service, since starting it again cannot help") == 1
    assert service.log.count("the startup handler workers:failing_startup raised") <= 2  # once per worker at most


def test_refused_credentials_stop_the_service_with_3(project, services, vhost) -> None:
    port = free_port()
    built = project(config(port)).build()
    service = built.service(vhost, RABBITMQ_URL=url(vhost, password="wrong"))
    services.append(service)
    assert service.wait(60) == 3
    assert "wrong" not in service.log


def test_a_second_sigterm_stops_handlers_in_flight_at_once(project, services, vhost) -> None:
    built, service, _port = running(project, services, vhost, shutdown_timeout=120)
    publish(vhost, "work", [f"s{number}" for number in range(4)], headers={"sleep": "300", "announce": "1"})
    wait_until(lambda: len(built.events("start")) == 4, 30, message="all four in flight")
    service.signal(signal.SIGTERM)
    service.wait_for_log(r"SIGTERM received: stopping 2 workers")
    assert service.process.poll() is None, "the first signal waits for the handlers"
    service.signal(signal.SIGTERM)
    assert service.wait(30) == 1
    wait_until(lambda: queue_depth(vhost, "work") == 4, 30, message="the four back in their queue")
    assert done(built) == []


def test_when_the_parent_is_killed_its_workers_stop(project, services, vhost) -> None:
    _built, service, port = running(project, services, vhost)
    pids = worker_pids(port)
    service.kill()  # SIGKILL: no chance to pass anything on
    wait_until(lambda: not any(_running(pid) for pid in pids), 30)
    wait_until(lambda: connections(vhost) == [], 30, message="their connections closed")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_legacy_command_runs_several_processes_too(project, services, vhost) -> None:
    port = free_port()
    built = project(config(port))
    command = [sys.executable, "-m", "amqp_dispatcher.compiler.legacy_cli", "--config", "config.yml"]
    service = built.service(vhost, command=command)
    services.append(service)
    wait_until(lambda: ready(port), 60, message="/readyz 200")
    assert len(set(worker_pids(port))) == 2
    assert service.stop() == 0


def test_a_wrong_override_is_one_line_and_exit_2(project, services, vhost) -> None:
    built = project(config(free_port())).build()
    service = built.service(vhost, DISPATCHER_PROCESSES="lots")
    services.append(service)
    assert service.wait(30) == 2
    assert "DISPATCHER_PROCESSES='lots': expected a number of processes from 1 to 256, or auto" in service.log
    assert "Traceback" not in service.log
