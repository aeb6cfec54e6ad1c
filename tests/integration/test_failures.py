"""When consume raises: requeue, shutdown(exc), a new instance, and no hot loop."""

from __future__ import annotations

import time

import pytest

from .harness import publish, purge, queue_depth, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
consumers:
  - consumer: workers:{consumer}
    queue: work
    consumer_count: 1
    prefetch_count: 1
queues:
  - queue: work
"""


def test_a_raising_consume_requeues_calls_shutdown_and_replaces_the_instance(project, services, vhost) -> None:
    built = project(CONFIG.format(consumer="Recorder"))
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "work", ["boom"], headers={"fail_once": True})
    (end,) = wait_until(lambda: built.events("end"))
    shutdowns = built.events("shutdown")
    assert len(shutdowns) == 1 and "RuntimeError" in shutdowns[0]["exception"]
    first, second = [event["instance"] for event in built.events("init")]
    # The failed message went back to the queue and came back, marked as redelivered, to a new instance.
    starts = built.events("start")
    assert [(e["instance"], e["delivery_info"]["redelivered"]) for e in starts] == [(first, False), (second, True)]
    assert end["instance"] == second
    assert services[0].stop() == 0
    assert queue_depth(vhost, "work") == 0
    log = services[0].log
    assert "consume raised on delivery" in log and "RuntimeError: asked to fail" in log
    assert "replacing instance 0 in 0.5 s (1 failure in a row)" in log


def test_the_replacement_happens_even_when_shutdown_raises(project, services, vhost) -> None:
    built = project(CONFIG.format(consumer="ShutdownRaises"))
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "work", ["poison"])
    wait_until(lambda: len(built.events("init")) >= 3)
    assert len(built.events("shutdown")) >= 2
    assert "RuntimeError: shutdown failed too" in services[0].log
    starts = built.events("start")
    assert starts[0]["redelivered"] is False and all(event["redelivered"] for event in starts[1:])


def test_a_consumer_failing_on_every_message_backs_off_instead_of_spinning(project, services, vhost) -> None:
    """Replacement backs off exponentially (0.5, 1, 2, 4 s...), so failures stay few and CPU idle."""
    built = project(CONFIG.format(consumer="AlwaysFails"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", [f"poison {n}" for n in range(5)])
    wait_until(lambda: built.events("start"))
    cpu_before, started = service.cpu_seconds(), time.monotonic()
    service.wait_for_log(r"replacing instance 0 in 4\.0 s \(4 failures in a row\)", timeout=30)
    cpu = service.cpu_seconds() - cpu_before
    elapsed = time.monotonic() - started
    starts = [event["t"] for event in built.events("start")]
    assert len(starts) == 4, "one attempt per replacement, not a hot loop"
    assert starts[3] - starts[0] >= 0.5 + 1 + 2, "waits of 0.5, 1 and 2 s between the four attempts"
    assert cpu < 0.25 * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.1f} s (a hot loop takes a whole core)"
    assert len(built.events("init")) == 4, "a new instance after each failure"


def test_a_success_resets_the_backoff(project, services, vhost) -> None:
    built = project(CONFIG.format(consumer="Recorder"))
    services.append(built.service(vhost).wait_ready())
    publish(vhost, "work", ["fails twice"], headers={"fail": True})
    services[0].wait_for_log(r"replacing instance 0 in 1\.0 s \(2 failures in a row\)")
    # The poison message is in the way: stop, and take it out of the queue.
    assert services[0].stop() == 0
    purge(vhost, "work")
    services.append(built.service(vhost).wait_ready())
    # A fresh service: fail once, succeed, fail once: each failure is the first in a row.
    publish(vhost, "work", ["once"], headers={"fail_once": True})
    wait_until(lambda: any(e["body"] == "once" for e in built.events("end")))
    publish(vhost, "work", ["once more"], headers={"fail_once": True})
    wait_until(lambda: any(e["body"] == "once more" for e in built.events("end")))
    log = services[1].log
    assert log.count("(1 failure in a row)") == 2, log
    assert "(2 failures in a row)" not in log


def test_a_consumer_that_ends_its_own_greenlet_never_leaves_the_service_consuming_nothing(
    project, services, vhost
) -> None:
    """One instance only: were its worker gone, nothing would be consumed any more."""
    built = project(CONFIG.format(consumer="Breaker"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    for how in ("greenlet-exit", "kill", "system-exit"):
        publish(vhost, "work", [how], headers={"break": how})
    publish(vhost, "work", [f"after {n}" for n in range(5)])
    expected = {"greenlet-exit", "kill", "system-exit", *(f"after {n}" for n in range(5))}
    wait_until(lambda: {event["body"] for event in built.events("end")} == expected, timeout=60)
    assert len(built.events("break")) == 3 and len(built.events("shutdown")) >= 3
    assert queue_depth(vhost, "work") == 0
    assert service.stop() == 0
