"""Losing the connection: reconnect with backoff, re-declare, resume, and never ack on the wrong channel.

A broker restart (stop_app, start_app) under 20,000 messages is scenario 1 of the fault suite
(tests/faults).
"""

from __future__ import annotations

import pytest

from .harness import channel, connections, publish, queue_depth, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
consumers:
  - consumer: workers:Recorder
    queue: work
    consumer_count: 5
    prefetch_count: 20
exchanges:
  - exchange: events
    type: topic
queues:
  - queue: work
    bindings:
      - exchange: events
        routing_key: "#"
"""


def connection_pids(vhost: str) -> list[str]:
    return [row["pid"] for row in connections(vhost, "pid")]


def close_connections(vhost: str) -> int:
    pids = connection_pids(vhost)
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test: forced close")
    return len(pids)


def processed(built) -> set[str]:  # type: ignore[no-untyped-def]
    return {event["body"] for event in built.events("end")}


@pytest.mark.each_transport
def test_a_forced_close_is_survived_and_no_message_is_lost(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    bodies = [f"m{n}" for n in range(300)]
    publish(vhost, "work", bodies[:150], headers={"sleep": "0.01"})
    wait_until(lambda: len(processed(built)) >= 20)
    assert close_connections(vhost) == 1
    publish(vhost, "work", bodies[150:], headers={"sleep": "0.01"})
    wait_until(lambda: processed(built) >= set(bodies), timeout=60, message="every message processed at least once")
    service.wait_for_log("consuming again on")
    assert "lost the connection" in service.log
    wait_until(lambda: queue_depth(vhost, "work") == 0)
    assert service.stop() == 0
    assert queue_depth(vhost, "work") == 0, "nothing was left unacknowledged"
    # Acks of deliveries from the dead connection were dropped, never sent on the new channel
    # (which would close it with 406 PRECONDITION_FAILED - unknown delivery tag).
    assert "unknown delivery tag" not in service.log
    assert "the broker closed the channel" not in service.log


def test_repeated_forced_closes(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    for round_number in range(3):
        publish(vhost, "work", [f"r{round_number}-{n}" for n in range(20)])
        wait_until(lambda r=round_number: {f"r{r}-{n}" for n in range(20)} <= processed(built))
        close_connections(vhost)
        wait_until(lambda r=round_number: service.log.count("consuming again on") > r, timeout=60)
    assert service.stop() == 0


def test_the_topology_is_declared_again_after_reconnecting(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    with channel(vhost) as ch:
        ch.exchange_delete("events")
        ch.queue_delete("work")
    # The broker cancels the consumer of the deleted queue; the pool declares everything again.
    service.wait_for_log("the broker cancelled the consumer")
    wait_until(lambda: service.log.count("consuming on channel") >= 2)
    close_connections(vhost)
    service.wait_for_log("consuming again on", timeout=60)
    publish(vhost, "anything", ["after"], exchange="events")
    wait_until(lambda: "after" in processed(built))
