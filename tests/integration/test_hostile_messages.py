"""Messages whose headers the client cannot decode, sent through the real broker.

RabbitMQ passes them on untouched (a timestamp past year 9999, a table nested thousands deep);
pika raises while decoding them inside its frame loop. One of them must never stop the
service: the connection and every other consumer keep working, and each such message reaches
a defined end, dead-lettered as it was sent or parked with a reason, whether it was queued
before the service started or arrived while it ran.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import uuid
from typing import Any

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Project, channel, create_vhost, drain, queue_depth, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
startup_timeout: 10
consumers:
  - consumer: workers:Tally
    queue: work
    consumer_count: 2
    prefetch_count: 10
  - consumer: workers:Tally
    queue: retried
    consumer_count: 2
    prefetch_count: 10
    on_error: retry
    retry: {max_attempts: 2, delays: [0.2]}
exchanges:
  - exchange: dead
    type: fanout
queues:
  - queue: work
    x_dead_letter_exchange: dead
  - queue: retried
  - queue: dead-letters
    bindings:
      - exchange: dead
"""


class RawProperties(pika.BasicProperties):  # type: ignore[misc]
    """Properties sent exactly as encoded: the way to publish what pika itself cannot encode."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__()
        self._encoded = encoded

    def encode(self) -> list[bytes]:
        return [self._encoded]


def table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def entry(key: bytes, value: bytes) -> bytes:
    return bytes([len(key)]) + key + value


def nested(depth: int) -> bytes:
    value = b"V"
    for _ in range(depth):
        value = b"F" + table(entry(b"n", value))
    return value


HOSTILE = st.one_of(
    st.integers(253_402_300_800, 2**64 - 1).map(lambda n: b"T" + struct.pack(">Q", n)),
    st.integers(1200, 2500).map(nested),
    st.integers(253_402_300_800, 2**64 - 1).map(lambda n: b"A" + table(b"T" + struct.pack(">Q", n))),
)


def properties(message_id: str, headers: bytes) -> RawProperties:
    flags = pika.spec.BasicProperties
    bits = flags.FLAG_HEADERS | flags.FLAG_DELIVERY_MODE | flags.FLAG_MESSAGE_ID
    encoded = struct.pack(">H", bits) + headers + b"\x02" + bytes([len(message_id)]) + message_id.encode()
    return RawProperties(encoded)


def publish_raw(vhost: str, queue: str, messages: list[tuple[str, bytes]]) -> None:
    """(id, headers table) pairs, the id as body and message_id, each confirmed by the broker."""
    with channel(vhost) as ch:
        ch.confirm_delivery()
        for message_id, headers in messages:
            ch.basic_publish("", queue, message_id.encode(), properties(message_id, headers), mandatory=True)


def predeclare(vhost: str) -> None:
    with channel(vhost) as ch:
        ch.exchange_declare("dead", "fanout", durable=True)
        ch.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "dead"})
        ch.queue_declare("retried", durable=True)
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_bind("dead-letters", "dead")


def done(built: Project) -> set[str]:
    return {event["body"] for event in built.events("done")}


@pytest.fixture
def built(project: Any) -> Project:
    return project(CONFIG)  # type: ignore[no-any-return]


@pytest.mark.each_transport
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    hostile=st.lists(HOSTILE, min_size=2, max_size=6),
    queued_first=st.integers(0, 6),
)
def test_undecodable_messages_never_stop_the_service_and_each_reaches_a_defined_end(
    built: Project, broker: None, hostile: list[bytes], queued_first: int
) -> None:
    vhost = create_vhost()
    service = None
    try:
        predeclare(vhost)
        run = uuid.uuid4().hex[:6]
        good = {queue: [f"{run}-{queue}-good-{n}" for n in range(40)] for queue in ("work", "retried")}
        bad = {
            queue: [(f"{run}-{queue}-bad-{n}", table(entry(b"h", value))) for n, value in enumerate(hostile)]
            for queue in ("work", "retried")
        }
        plain = table(entry(b"ok", b"t\x01"))
        # Some of the hostile ones wait in the queues before the service starts.
        for queue in ("work", "retried"):
            publish_raw(vhost, queue, bad[queue][:queued_first])
        service = built.service(vhost).wait_ready(timeout=30)
        for queue in ("work", "retried"):
            mixed = [(message_id, plain) for message_id in good[queue]]
            for position, message in enumerate(bad[queue][queued_first:]):
                mixed.insert(position * 7 % (len(mixed) + 1), message)
            publish_raw(vhost, queue, mixed)
        everything = set(good["work"]) | set(good["retried"])
        wait_until(lambda: everything <= done(built), timeout=60, message="every good message consumed")
        wait_until(lambda: queue_depth(vhost, "dead-letters") == len(hostile), timeout=30)
        wait_until(lambda: queue_depth(vhost, "retried.parked") == len(hostile), timeout=30)
        assert service.stop() == 0
        log = service.log
        assert "lost the connection" not in log, "one message never takes the connection down"
        assert log.count("cannot be decoded") == 2 * len(hostile), "each one is logged, once"
        assert not {message_id for message_id, _ in bad["work"] + bad["retried"]} & done(built), "never consumed"
        parked = {body.decode(): props for _, props, body in drain(vhost, "retried.parked")}
        assert set(parked) == {message_id for message_id, _ in bad["retried"]}
        for message_id, headers in bad["retried"]:
            kept = parked[message_id].headers
            assert kept["x-dispatcher-raw-headers"] == headers[4:], "parked with the headers' raw bytes"
            assert kept["x-dispatcher-undecodable"] and kept["x-dispatcher-queue"] == "retried"
        assert queue_depth(vhost, "work") == 0 and queue_depth(vhost, "retried") == 0
    finally:
        if service is not None:
            service.kill()
        rabbitmqctl("delete_vhost", vhost)


def test_parked_replay_leaves_undecodable_messages_parked_and_says_so(project, services, vhost) -> None:
    built = project(CONFIG)
    predeclare(vhost)
    publish_raw(vhost, "retried", [("bad-1", table(entry(b"h", b"T" + struct.pack(">Q", 2**63))))])
    publish_raw(vhost, "retried", [("good-1", table(entry(b"ok", b"t\x01")))])
    service = built.service(vhost).wait_ready()
    services.append(service)
    wait_until(lambda: queue_depth(vhost, "retried.parked") == 1 and "good-1" in done(built), timeout=30)
    assert service.stop() == 0
    command = [
        sys.executable,
        "-m",
        "amqp_dispatcher.compiler.legacy_cli",
        "parked",
        "replay",
        "--config",
        "config.yml",
    ]
    result = subprocess.run(command, cwd=built.root, env=built.environment(vhost), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "replayed 0 messages to retried" in result.stdout
    assert "left 1 message parked: its headers could not be decoded" in result.stdout
    assert queue_depth(vhost, "retried.parked") == 1 and queue_depth(vhost, "retried") == 0
