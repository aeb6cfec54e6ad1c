"""The HTTP endpoint on a whole service over the in-memory broker: routes, readiness, metrics.

What operators rely on: /readyz is 200 only while every consumer entry holds a live consumer,
and names what is not ready otherwise; /metrics counts add up (every delivery received is
settled exactly once, by outcome); unknown paths are 404 and other methods 405; the port is
chosen per deployment by DISPATCHER_HTTP_PORT; a port in use is a one-line error at start.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime import supervisor as supervisor_module
from amqp_dispatcher.runtime.endpoint import HttpEndpoint, listen_address
from amqp_dispatcher.runtime.errors import ConfigurationError, ConnectionLost
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.runner import ServiceRunner
from amqp_dispatcher.runtime.spec import ConsumerEntry, Http, Reject, Requeue

from .rig import SETTINGS, queue, retry_policy, service, wait_for

release = gevent.event.Event()


class Scripted:
    def consume(self, amqp: Any, msg: Any) -> None:
        if msg.body == b"hold":
            release.wait()
        if msg.body == b"fail":
            raise ValueError("asked to")
        if msg.body == b"nack":
            amqp.nack(requeue=False)

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.002)
    monkeypatch.setattr(supervisor_module, "RECONNECT_BASE", 0.001)
    monkeypatch.setattr(supervisor_module, "RECONNECT_CAP", 0.005)


class Running:
    """A service of three consumer entries (requeue, reject, retry) with its endpoint on a free port."""

    def __init__(self) -> None:
        entries = (
            ConsumerEntry(consumer=Scripted, queue="a", consumer_count=2, prefetch_count=5, on_error=Requeue()),
            ConsumerEntry(consumer=Scripted, queue="b", consumer_count=1, prefetch_count=5, on_error=Reject()),
            ConsumerEntry(
                consumer=Scripted, queue="c", consumer_count=1, prefetch_count=5, on_error=retry_policy(2, "c")
            ),
        )
        queues = tuple(queue(name) for name in ("a", "b", "c", "c.retry.1s", "c.parked"))
        self.broker = MemoryBroker()
        described = service(entries, queues)
        self.runner = ServiceRunner(
            described, SETTINGS, MemoryTransport(self.broker), http=Http(port=0, host="127.0.0.1")
        )
        self.greenlet = gevent.spawn(self.runner.run)
        wait_for(self.runner.supervisor.ready.is_set)

    @property
    def endpoint(self) -> HttpEndpoint:
        assert self.runner.endpoint is not None
        return self.runner.endpoint

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """A request from a native thread, so that the hub keeps serving meanwhile."""
        url = f"http://127.0.0.1:{self.endpoint.port}{path}"

        def fetch() -> tuple[int, dict[str, str], bytes]:
            request = urllib.request.Request(url, method=method)
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return answer.status, dict(answer.headers), answer.read()
            except urllib.error.HTTPError as error:
                return error.code, dict(error.headers), error.read()

        return gevent.get_hub().threadpool.apply(fetch)

    def metric(self, name: str, **labels: str) -> float:
        _, _, body = self.get("/metrics")
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        raise AssertionError(f"no sample {name} {labels}")

    def close(self) -> None:
        self.runner._on_signal(15)
        assert self.greenlet.get(timeout=10) == 0


@pytest.fixture
def running() -> Iterator[Running]:
    started = Running()
    yield started
    started.close()


def test_the_routes_and_their_answers(running: Running) -> None:
    assert running.get("/livez")[0] == 200
    status, headers, body = running.get("/readyz")
    assert (status, json.loads(body)) == (200, {"ready": True}) and headers["Content-Type"] == "application/json"
    info = json.loads(running.get("/info")[2])
    assert info["service"] == "test" and [c["queue"] for c in info["consumers"]] == ["a", "b", "c"]
    assert [c["on_error"] for c in info["consumers"]] == ["requeue", "reject", "retry"]
    status, headers, _ = running.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    assert running.get("/nowhere")[0] == 404
    status, headers, _ = running.get("/livez", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = running.get("/readyz", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_readiness_names_an_entry_whose_consumer_the_broker_cancelled_until_it_consumes_again(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.3)  # the pool waits this long before consuming again
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.3)
    running.broker.cancel_consumers("b")
    wait_for(lambda: running.get("/readyz")[0] == 503)
    status, _, body = running.get("/readyz")
    assert status == 503
    assert json.loads(body)["not_ready"] == [
        "consumer tests.runtime.test_endpoint:Scripted on queue 'b' holds no live consumer"
    ]
    wait_for(lambda: running.get("/readyz")[0] == 200)
    assert running.metric("amqp_dispatcher_broker_cancels_total", queue="b") == 1


def test_readiness_fails_while_the_connection_is_lost_and_comes_back_after_it_reconnects(running: Running) -> None:
    running.broker.stop()
    wait_for(lambda: running.get("/readyz")[0] == 503)
    assert "the consuming connection is not open" in json.loads(running.get("/readyz")[2])["not_ready"]
    running.broker.start()
    wait_for(lambda: running.get("/readyz")[0] == 200)
    assert running.metric("amqp_dispatcher_reconnects_total") == 1
    assert running.metric("amqp_dispatcher_connection_open", connection="consuming") == 1


def test_readiness_fails_while_the_broker_blocks_publishing(running: Running) -> None:
    running.broker.publish("", "c", b"fail")  # the retry policy publishes: the publishing connection opens
    wait_for(lambda: running.runner.publisher.is_connected)
    running.broker.block()
    wait_for(lambda: running.get("/readyz")[0] == 503)
    running.broker.block(False)
    wait_for(lambda: running.get("/readyz")[0] == 200)


def test_the_counts_add_up_by_outcome_for_every_policy(running: Running) -> None:
    plan = {"a": [b"ok"] * 30 + [b"nack"] * 5, "b": [b"ok"] * 20 + [b"fail"] * 7, "c": [b"ok"] * 10 + [b"fail"] * 4}
    for name, bodies in plan.items():
        for body in bodies:
            running.broker.publish("", name, body, {"timestamp": 1})
    # c's failures go to its delay queue (retry), and are played back once by hand to be parked.
    wait_for(lambda: len(running.broker.ready("c.retry.1s")) == 4)
    for message in running.broker.ready("c.retry.1s"):
        running.broker.publish("", "c", message.body, message.properties)
    wait_for(lambda: len(running.broker.ready("c.parked")) == 4 and len(running.broker.settled) == 35 + 27 + 18)

    def settled(name: str, outcome: str) -> float:
        return running.metric("amqp_dispatcher_messages_settled_total", queue=name, outcome=outcome)

    assert (settled("a", "ack"), settled("a", "nack")) == (30, 5)
    assert (settled("b", "ack"), settled("b", "reject")) == (20, 7)
    assert (settled("c", "ack"), settled("c", "retry"), settled("c", "parked")) == (10, 4, 4)
    for name, received in (("a", 35), ("b", 27), ("c", 18)):
        assert running.metric("amqp_dispatcher_messages_received_total", queue=name) == received
        assert running.metric("amqp_dispatcher_handler_duration_seconds_count", queue=name) == received
    assert running.metric("amqp_dispatcher_instance_replacements_total", queue="b") == 7
    assert running.metric("amqp_dispatcher_time_in_queue_seconds_count", queue="a") == 35
    assert running.metric("amqp_dispatcher_publishes_total", outcome="confirmed") == 8  # 4 retries, 4 parked
    assert running.metric("amqp_dispatcher_messages_in_flight", queue="a") == 0
    assert running.metric("amqp_dispatcher_instances_live", queue="a") == 2


def test_a_port_in_use_is_one_line_and_a_configuration_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        endpoint = HttpEndpoint(Http(port=port, host="127.0.0.1"), ready=list, info=dict, metrics=lambda: (b"", ""))
        with pytest.raises(ConfigurationError, match=rf"cannot serve the HTTP endpoint on 127.0.0.1:{port}: .*in use"):
            endpoint.start()
    finally:
        taken.close()


CONFIGURED = Http(port=9108, host="0.0.0.0")


@pytest.mark.parametrize(
    "environ,expected",
    [
        ({}, CONFIGURED),
        ({"DISPATCHER_HTTP_PORT": "9200"}, Http(port=9200, host="0.0.0.0")),
        ({"DISPATCHER_HTTP_HOST": "127.0.0.1"}, Http(port=9108, host="127.0.0.1")),
        ({"DISPATCHER_HTTP_PORT": "off"}, None),
    ],
)
def test_the_environment_chooses_the_port_per_deployment(environ: dict[str, str], expected: Http | None) -> None:
    assert listen_address(environ, CONFIGURED) == expected


def test_the_environment_can_turn_the_endpoint_on() -> None:
    assert listen_address({"DISPATCHER_HTTP_PORT": "9300"}, None) == Http(port=9300, host="0.0.0.0")
    assert listen_address({}, None) is None
    with pytest.raises(ConfigurationError, match="DISPATCHER_HTTP_HOST is set, but no port is"):
        listen_address({"DISPATCHER_HTTP_HOST": "::"}, None)


@given(st.text(max_size=8).filter(lambda text: not (text.strip().isascii() and text.strip().isdigit())))
def test_anything_but_a_port_number_or_off_is_refused(text: str) -> None:
    if text.strip().lower() in ("", "off"):
        return
    with pytest.raises(ConfigurationError, match=r"DISPATCHER_HTTP_PORT=.*expected a TCP port from 1 to 65535, or off"):
        listen_address({"DISPATCHER_HTTP_PORT": text}, CONFIGURED)


@pytest.mark.parametrize("port", ["0", "65536", "99999999999999999999"])
def test_ports_out_of_range_are_refused(port: str) -> None:
    with pytest.raises(ConfigurationError, match="expected a TCP port from 1 to 65535"):
        listen_address({"DISPATCHER_HTTP_PORT": port}, CONFIGURED)


def test_an_answer_lost_with_its_connection_is_counted_as_dropped_and_the_redelivery_as_received(
    running: Running,
) -> None:
    release.clear()
    running.broker.publish("", "a", b"hold")
    wait_for(lambda: running.metric("amqp_dispatcher_messages_in_flight", queue="a") == 1)
    for connection in list(running.broker.connections):
        connection.close_by_broker(ConnectionLost("320 CONNECTION_FORCED"))
    wait_for(lambda: running.get("/readyz")[0] == 200)
    release.set()  # the first answer goes nowhere; the broker redelivered the message meanwhile
    wait_for(lambda: running.metric("amqp_dispatcher_messages_settled_total", queue="a", outcome="ack") == 1)
    assert running.metric("amqp_dispatcher_messages_settled_total", queue="a", outcome="dropped_stale") == 1
    assert running.metric("amqp_dispatcher_messages_received_total", queue="a") == 2
    assert running.metric("amqp_dispatcher_reconnects_total") == 1


@given(st.text(max_size=12))
def test_a_host_is_an_address_or_a_name_and_nothing_else(text: str) -> None:
    host = text.strip()
    if not host:
        assert listen_address({"DISPATCHER_HTTP_HOST": text}, CONFIGURED) == CONFIGURED
        return
    allowed = all(char.isascii() and (char.isalnum() or char in ".:_-") for char in host)
    if allowed:
        assert listen_address({"DISPATCHER_HTTP_HOST": text}, CONFIGURED) == Http(port=9108, host=host)
        return
    with pytest.raises(ConfigurationError) as refusal:
        listen_address({"DISPATCHER_HTTP_HOST": text}, CONFIGURED)
    assert "\n" not in str(refusal.value) and str(refusal.value).isprintable()
