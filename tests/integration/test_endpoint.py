"""The HTTP endpoint against the real broker: counts that add up, readiness that flips, liveness.

What operators rely on: after a mixed run under every error policy, /metrics says exactly what
happened to each message; /readyz turns 503 when the broker closes the connection or deletes
the consumed queue, names what is not ready, and turns 200 again after recovery; /livez gets no
answer while a handler blocks the hub; a port in use is one line and exit 2.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from amqp_dispatcher.runtime.interface import INTERFACE
from amqp_dispatcher.runtime.version import VERSION

from .harness import channel, connections, publish, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker

MIXED = """
http:
  port: 9108
consumers:
  - consumer: workers:Recorder
    queue: requeued
    consumer_count: 10
    prefetch_count: 20
  - consumer: workers:Recorder
    queue: rejected
    consumer_count: 10
    prefetch_count: 20
    on_error: reject
  - consumer: workers:Recorder
    queue: retried
    consumer_count: 10
    prefetch_count: 20
    on_error: retry
    retry:
      max_attempts: 2
      delays: [0.2]
queues:
  - queue: requeued
  - queue: rejected
  - queue: retried
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = get(port, "/metrics")[1].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_counts_add_up_exactly_after_1000_messages_under_every_policy(project, services, vhost) -> None:
    port = free_port()
    service = project(MIXED).service(vhost, DISPATCHER_HTTP_PORT=str(port)).wait_ready()
    services.append(service)
    publish(vhost, "requeued", [f"a{n}" for n in range(300)])
    publish(vhost, "requeued", [f"af{n}" for n in range(40)], headers={"fail_once": True})
    publish(vhost, "rejected", [f"b{n}" for n in range(300)])
    publish(vhost, "rejected", [f"bf{n}" for n in range(30)], headers={"fail": True})
    publish(vhost, "retried", [f"c{n}" for n in range(300)])
    publish(vhost, "retried", [f"cf{n}" for n in range(30)], headers={"fail": True})
    expected = {
        "requeued": {"received": 380, "ack": 340, "requeue": 40},
        "rejected": {"received": 330, "ack": 300, "reject": 30},
        "retried": {"received": 360, "ack": 300, "retry": 30, "parked": 30},
    }
    consumer = "workers:Recorder"

    def settled(found: dict[Any, float], queue: str) -> float:
        return sum(
            value(found, "amqp_dispatcher_messages_settled_total", consumer=consumer, queue=queue, outcome=outcome)
            for outcome in ("ack", "nack", "reject", "requeue", "retry", "parked", "dropped_stale")
        )

    def done() -> bool:
        found = samples(port)
        return all(settled(found, queue) == counts["received"] for queue, counts in expected.items())

    wait_until(done, timeout=120, interval=0.5, message="every delivery settled")
    found = samples(port)
    for queue, counts in expected.items():
        entry = {"consumer": consumer, "queue": queue}
        assert value(found, "amqp_dispatcher_messages_received_total", **entry) == counts["received"], queue
        for outcome in ("ack", "nack", "reject", "requeue", "retry", "parked", "dropped_stale"):
            got = value(found, "amqp_dispatcher_messages_settled_total", **entry, outcome=outcome)
            assert got == counts.get(outcome, 0), (queue, outcome)
        assert value(found, "amqp_dispatcher_handler_duration_seconds_count", **entry) == counts["received"]
        assert value(found, "amqp_dispatcher_messages_in_flight", **entry) == 0
        assert value(found, "amqp_dispatcher_consumer_live", **entry) == 1
    assert value(found, "amqp_dispatcher_publishes_total", outcome="confirmed") == 60  # 30 retried, 30 parked
    assert value(found, "amqp_dispatcher_connection_open", connection="consuming") == 1
    assert service.stop() == 0


READY = """
http:
  port: 9108
consumers:
  - consumer: workers:Recorder
    queue: work
  - consumer: workers:Recorder
    queue: other
queues:
  - queue: work
  - queue: other
"""


class Watcher:
    """Polls /readyz from a thread and keeps every answer, with its time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[tuple[float, int, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = get(self.port, "/readyz", timeout=2)
            except OSError:
                status, body = 0, b""
            self.answers.append((time.monotonic(), status, body))
            time.sleep(0.02)

    def first(self, status: int, after: float) -> tuple[float, bytes] | None:
        return next(((at, body) for at, got, body in self.answers if got == status and at >= after), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_readyz_flips_on_a_forced_close_and_comes_back(project, services, vhost) -> None:
    port = free_port()
    service = project(READY).service(vhost, DISPATCHER_HTTP_PORT=str(port)).wait_ready()
    services.append(service)
    assert get(port, "/readyz")[0] == 200
    watcher = Watcher(port)
    try:
        rabbitmqctl("suspend_listeners")  # so that the service stays away long enough to be seen
        try:
            pids = [row["pid"] for row in connections(vhost, "pid")]
            for pid in pids:
                rabbitmqctl("close_connection", pid, "test: forced close")
            closed_at = time.monotonic()  # when the broker has closed it (rabbitmqctl takes about 0.5 s to start)
            wait_until(lambda: watcher.first(503, closed_at), timeout=5, message="/readyz 503 after the close")
        finally:
            rabbitmqctl("resume_listeners")
        flipped_at, body = watcher.first(503, closed_at)  # type: ignore[misc]
        assert flipped_at - closed_at < 1.0
        assert "the consuming connection is not open" in json.loads(body)["not_ready"]
        wait_until(lambda: watcher.first(200, flipped_at), timeout=60, message="/readyz 200 after the reconnect")
    finally:
        watcher.stop()
    assert service.stop() == 0


def test_readyz_flips_when_the_consumed_queue_is_deleted_and_comes_back(project, services, vhost) -> None:
    port = free_port()
    built = project(READY)
    service = built.service(vhost, DISPATCHER_HTTP_PORT=str(port)).wait_ready()
    services.append(service)
    info = json.loads(get(port, "/info")[1])
    assert (info["generator"]["version"], info["runtime"]["version"]) == (VERSION, VERSION)
    package = (built.root / "service" / "__init__.py").read_text()
    assert info["runtime"]["interface"] == INTERFACE and f"config sha256: {info['config_sha256']}" in package
    assert [(entry["consumer"], entry["queue"]) for entry in info["consumers"]] == [
        ("workers:Recorder", "work"),
        ("workers:Recorder", "other"),
    ]
    watcher = Watcher(port)
    try:
        deleted_at = time.monotonic()
        with channel(vhost) as ch:
            ch.queue_delete("work")
        wait_until(lambda: watcher.first(503, deleted_at), timeout=5, message="/readyz 503 after the cancel")
        flipped_at, body = watcher.first(503, deleted_at)  # type: ignore[misc]
        assert flipped_at - deleted_at < 1.0
        assert json.loads(body)["not_ready"] == ["consumer workers:Recorder on queue 'work' holds no live consumer"]
        wait_until(lambda: watcher.first(200, flipped_at), timeout=30, message="/readyz 200 after consuming again")
    finally:
        watcher.stop()
    found = samples(port)
    assert value(found, "amqp_dispatcher_broker_cancels_total", consumer="workers:Recorder", queue="work") == 1
    assert service.stop() == 0


BLOCKING = """
http:
  port: 9108
blocking_threshold: 0.5
consumers:
  - consumer: workers:Blocker
    queue: slow
queues:
  - queue: slow
"""


def test_livez_gets_no_answer_while_a_handler_blocks_the_hub(project, services, vhost) -> None:
    port = free_port()
    built = project(BLOCKING)
    service = built.service(vhost, DISPATCHER_HTTP_PORT=str(port)).wait_ready()
    services.append(service)
    assert get(port, "/livez") == (200, b"ok\n")
    publish(vhost, "slow", ["stuck"], headers={"block": "4"})
    wait_until(lambda: built.events("block-start"))
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        get(port, "/livez", timeout=1.0)
    wait_until(lambda: built.events("block-end"), timeout=10)
    assert get(port, "/livez") == (200, b"ok\n")
    service.wait_for_log("blocked the gevent hub")
    assert value(samples(port), "amqp_dispatcher_hub_blocked_total") >= 1
    assert service.stop() == 0


def test_a_port_in_use_exits_2_with_one_line(project, services, vhost) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = project(READY).service(vhost, DISPATCHER_HTTP_PORT=str(port))
        services.append(service)
        assert service.wait(30) == 2
    assert f"cannot serve the HTTP endpoint on 0.0.0.0:{port}: Address already in use" in service.log
    assert "Traceback" not in service.log


RELAY = """
http:
  port: 9108
consumers:
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: work
  - queue: out
"""


@pytest.mark.each_transport
@pytest.mark.serial  # a memory alarm blocks every publisher on the system broker
def test_readyz_fails_while_the_broker_blocks_the_publishing_connection(project, services, vhost) -> None:
    port = free_port()
    built = project(RELAY)
    service = built.service(vhost, DISPATCHER_HTTP_PORT=str(port)).wait_ready()
    services.append(service)
    relay = {"publish": {"exchange": "", "routing_key": "out", "body": "y", "headers": None}}
    publish(vhost, "work", ["first"], headers=relay)  # the publishing connection opens, and publishes
    wait_until(lambda: built.events("end"))
    # The next one publishes 3 s after it starts: during the alarm, when RabbitMQ blocks the connection.
    publish(vhost, "work", ["second"], headers={**relay, "sleep": 3})
    wait_until(lambda: len(built.events("start")) == 2)
    watermark = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
    rabbitmqctl("set_vm_memory_high_watermark", "0.000001")  # a memory alarm: the broker blocks publishers
    try:
        wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=30, message="/readyz 503 while blocked")
        problems = json.loads(get(port, "/readyz")[1])["not_ready"]
        assert problems == ["the broker blocks the publishing connection (connection.blocked)"]
        assert value(samples(port), "amqp_dispatcher_connection_blocked") == 1
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", watermark if watermark.replace(".", "").isdigit() else "0.4")
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30, message="/readyz 200 once unblocked")
    wait_until(lambda: len(built.events("end")) == 2, message="the blocked publish went through after the alarm")
    assert service.stop() == 0
