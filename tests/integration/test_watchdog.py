"""The hub watchdog names a consumer that blocks the gevent hub, with its stack."""

from __future__ import annotations

import pytest

from .harness import publish, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
{threshold}
consumers:
  - consumer: workers:Blocker
    queue: slow
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: slow
  - queue: work
"""


def test_a_blocking_handler_is_named_with_its_stack(project, services, vhost) -> None:
    built = project(CONFIG.format(threshold="blocking_threshold: 0.5"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert "hub watchdog on: reports a consumer that blocks the hub for more than 0.5 s" in service.log
    publish(vhost, "slow", ["stuck"], headers={"block": "2"})
    publish(vhost, "work", ["waits"])
    wait_until(lambda: built.events("end"))
    service.wait_for_log("blocked the gevent hub")
    line = next(line for line in service.log.splitlines() if "blocked the gevent hub" in line)
    assert "consumer workers:Blocker on queue 'slow' (instance 0) blocked the gevent hub for more than 0.5 s" in line
    assert 'time.sleep(float(msg.headers.get("block", "1")))' in service.log, "the stack shows where it blocks"
    # The other pool could only run once the hub was free again: the watchdog cannot unblock it.
    block_end = next(i for i, e in enumerate(built.events()) if e["event"] == "block-end")
    recorder_start = next(i for i, e in enumerate(built.events()) if e["event"] == "start")
    assert recorder_start > block_end
    assert service.stop() == 0


def test_the_default_threshold_is_a_tenth_of_the_heartbeat(project, services, vhost) -> None:
    built = project(CONFIG.format(threshold="heartbeat: 15"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert "blocks the hub for more than 1.5 s" in service.log


def test_zero_turns_the_watchdog_off(project, services, vhost) -> None:
    built = project(CONFIG.format(threshold="blocking_threshold: 0"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "slow", ["stuck"], headers={"block": "1"})
    wait_until(lambda: built.events("block-end"))
    assert service.stop() == 0
    assert "watchdog" not in service.log and "blocked the gevent hub" not in service.log
