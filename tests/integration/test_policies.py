"""Error policies on the real broker: reject to the dead-letter exchange, retry with delays, park."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .harness import channel, drain, publish, queue_depth, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
consumers:
  - consumer: workers:{consumer}
    queue: work
    on_error: {policy}
    retry:
      max_attempts: 3
      delays: [0.3, 0.6]
exchanges:
  - exchange: origin
    type: topic
  - exchange: dead
    type: fanout
queues:
  - queue: work
    x_dead_letter_exchange: dead
    bindings:
      - exchange: origin
        routing_key: "order.#"
  - queue: dead-letters
    bindings:
      - exchange: dead
"""


def build(project, consumer: str, policy: str):  # type: ignore[no-untyped-def]
    config = CONFIG.format(consumer=consumer, policy=policy)
    if policy != "retry":
        config = config.replace("    retry:\n      max_attempts: 3\n      delays: [0.3, 0.6]\n", "")
    return project(config)


def test_reject_sends_a_failed_message_to_the_dead_letter_exchange(project, services, vhost) -> None:
    built = build(project, "AlwaysFails", "reject")
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "order.created", ["poison"], exchange="origin")
    wait_until(lambda: queue_depth(vhost, "dead-letters") == 1)
    assert len(built.events("start")) == 1, "rejected, not redelivered"
    ((_, properties, body),) = drain(vhost, "dead-letters")
    assert body == b"poison" and properties.headers["x-death"][0]["reason"] == "rejected"


def test_retry_brings_a_failed_message_back_after_the_delay_as_it_first_came(project, services, vhost) -> None:
    built = build(project, "Recorder", "retry")
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "order.created", ["flaky"], exchange="origin", headers={"fail_once": True, "trace": "t-1"})
    first, second = wait_until(lambda: built.events("start") if len(built.events("start")) == 2 else None)
    wait_until(lambda: built.events("end"))
    assert first["delivery_info"]["redelivered"] is False
    assert second["headers"]["x-dispatcher-attempts"] == 1 and second["headers"]["trace"] == "t-1"
    assert "RuntimeError: asked to fail" in second["headers"]["x-dispatcher-error"]
    info = second["delivery_info"]
    assert (info["exchange"], info["routing_key"], info["redelivered"]) == ("origin", "order.created", True)
    assert len(built.events("init")) == 2, "the failed instance was replaced"
    for queue in ("work", "work.retry.300ms", "work.retry.600ms", "work.parked", "dead-letters"):
        assert queue_depth(vhost, queue) == 0, queue


def test_a_message_waiting_for_its_retry_is_not_held_unacknowledged(project, services, vhost) -> None:
    built = project(CONFIG.format(consumer="AlwaysFails", policy="retry").replace("[0.3, 0.6]", "[30]"))
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "order.created", ["waits"], exchange="origin")
    wait_until(lambda: queue_depth(vhost, "work.retry.30s") == 1)
    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_unacknowledged")
    assert "work\t0" in listing.splitlines(), listing


def test_after_the_last_attempt_the_message_is_parked_with_its_provenance(project, services, vhost) -> None:
    built = build(project, "AlwaysFails", "retry")
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "order.created", ["poison"], exchange="origin", headers={"trace": "t-9"})
    wait_until(lambda: queue_depth(vhost, "work.parked") == 1, timeout=30)
    assert len(built.events("start")) == 3, "max_attempts: 3"
    ((_, properties, body),) = drain(vhost, "work.parked")
    headers = properties.headers
    assert body == b"poison" and properties.delivery_mode == 2
    assert headers["trace"] == "t-9"
    assert headers["x-dispatcher-attempts"] == 3
    assert headers["x-dispatcher-exception-type"] == "builtins.ValueError"
    assert headers["x-dispatcher-exception-message"] == "poison"
    assert headers["x-dispatcher-consumer"] == "workers:AlwaysFails"
    assert headers["x-dispatcher-queue"] == "work"
    assert (headers["x-dispatcher-exchange"], headers["x-dispatcher-routing-key"]) == ("origin", "order.created")
    assert isinstance(headers["x-dispatcher-parked-at"], int)
    assert "parked delivery" in service.log and "after 3 attempts" in service.log
    assert queue_depth(vhost, "work") == 0 and queue_depth(vhost, "dead-letters") == 0


def parked_command(built, vhost: str, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    command = [sys.executable, "-m", "amqp_dispatcher.compiler.legacy_cli", "parked", *args, "--config", "config.yml"]
    return subprocess.run(
        command, cwd=built.root, env=built.environment(vhost), capture_output=True, text=True, timeout=60
    )


def test_parked_ls_lists_without_removing_and_replay_moves_back(project, services, vhost) -> None:
    built = build(project, "AlwaysFails", "retry")
    service = built.service(vhost).wait_ready()
    publish(vhost, "order.created", ["p1", "p2"], exchange="origin")
    wait_until(lambda: queue_depth(vhost, "work.parked") == 2, timeout=30)
    service.stop()
    listing = parked_command(built, vhost, "ls")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == "work.parked (workers:AlwaysFails on work): 2 messages"
    assert lines[1].startswith("  1. ValueError: poison | attempts 3 | consumer workers:AlwaysFails | parked ")
    assert "first published to 'origin' / 'order.created' | 2 bytes" in lines[1]
    assert queue_depth(vhost, "work.parked") == 2, "ls removes nothing"
    replayed = parked_command(built, vhost, "replay", "--limit", "1")
    assert replayed.stdout == "work.parked: replayed 1 message to work\n"
    assert queue_depth(vhost, "work.parked") == 1 and queue_depth(vhost, "work") == 1
    with channel(vhost) as ch:
        method, properties, body = ch.basic_get("work", auto_ack=True)
    assert method is not None and body in (b"p1", b"p2")
    assert not any(key.startswith("x-dispatcher-") for key in properties.headers), "a fresh start"


def test_parked_without_a_retry_policy_says_so(project, vhost) -> None:
    built = build(project, "AlwaysFails", "reject")
    result = parked_command(built, vhost, "ls")
    assert result.returncode == 2 and "no consumer has on_error: retry" in result.stderr
