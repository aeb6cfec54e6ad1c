"""The runner's shutdown order and exit statuses, on the in-memory broker.

What users (and their orchestrators) rely on: a signal lets in-flight messages finish and
exits 0; a second signal stops at once with 1; a broker that refuses exits 3; a bug in our
own code exits 4 rather than leave a process alive that consumes nothing.
"""

from __future__ import annotations

import signal
from typing import Any

import gevent
import gevent.event
import pytest

from amqp_dispatcher.runtime import supervisor as supervisor_module
from amqp_dispatcher.runtime import topology
from amqp_dispatcher.runtime.errors import ExitStatus
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.runner import ServiceRunner
from amqp_dispatcher.runtime.spec import ConsumerEntry, Requeue, Service

from .rig import SETTINGS, queue, service, wait_for

events: list[Any] = []
release = gevent.event.Event()


class Holding:
    def consume(self, amqp: Any, msg: Any) -> None:
        events.append(("consume", msg.body))
        if msg.body == b"hold":
            release.wait()

    def shutdown(self, exception: BaseException | None = None) -> None:
        events.append(("shutdown", exception))


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    events.clear()
    release.clear()
    monkeypatch.setattr(supervisor_module, "RECONNECT_BASE", 0.001)
    monkeypatch.setattr(supervisor_module, "RECONNECT_CAP", 0.005)


def described(count: int = 2) -> Service[Any, Any]:
    entry = ConsumerEntry(consumer=Holding, queue="work", consumer_count=count, prefetch_count=5, on_error=Requeue())
    return service((entry,), (queue("work"),), startup_timeout=0.2)


def start(broker: MemoryBroker, count: int = 2) -> tuple[ServiceRunner, gevent.Greenlet[Any, int]]:
    runner = ServiceRunner(described(count), SETTINGS, MemoryTransport(broker))
    return runner, gevent.spawn(runner.run)


def test_a_signal_lets_the_message_in_hand_finish_then_exits_0() -> None:
    broker = MemoryBroker()
    runner, running = start(broker)
    wait_for(runner.supervisor.ready.is_set)
    broker.publish("", "work", b"hold")
    wait_for(lambda: ("consume", b"hold") in events)
    runner._on_signal(signal.SIGTERM)
    wait_for(lambda: all(pool.is_stopping for pool in runner.pools))
    assert not running.ready(), "it waits for the handler"
    release.set()
    assert running.get(timeout=5) == ExitStatus.OK
    assert [answer.how for answer in broker.settled] == ["ack"]
    assert events.count(("shutdown", None)) == 2, "every instance is shut down once"


def test_a_second_signal_stops_at_once_and_the_message_goes_back() -> None:
    broker = MemoryBroker()
    runner, running = start(broker)
    wait_for(runner.supervisor.ready.is_set)
    broker.publish("", "work", b"hold")
    wait_for(lambda: ("consume", b"hold") in events)
    runner._on_signal(signal.SIGTERM)
    runner._on_signal(signal.SIGINT)
    assert running.get(timeout=5) == ExitStatus.KILLED
    assert [message.body for message in broker.ready("work")] == [b"hold"], "closing returned it to its queue"
    release.set()


def test_a_broker_that_refuses_the_credentials_exits_3() -> None:
    broker = MemoryBroker()
    broker.refuse_credentials()
    _, running = start(broker)
    assert running.get(timeout=5) == ExitStatus.BROKER


def test_a_bug_in_our_own_code_exits_4(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug in declaring")

    monkeypatch.setattr(topology, "declare", broken)
    _, running = start(MemoryBroker())
    assert running.get(timeout=5) == ExitStatus.INTERNAL


def test_ctrl_c_while_the_startup_handler_runs_is_a_clean_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from amqp_dispatcher.runtime.runner import run_service

    def interrupted() -> None:
        raise KeyboardInterrupt

    for name in ("RABBITMQ_URL", "DISPATCHER_PROCESSES", "DISPATCHER_WORKER", "DISPATCHER_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    described = service((), (), startup_handler=interrupted)
    assert run_service(described, MemoryTransport(MemoryBroker())) == ExitStatus.OK


def test_a_worker_forgets_its_identity_so_programs_it_starts_are_no_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A consumer that runs `python -m another_service` must not make it a worker of this parent."""
    import os
    import socket as plain

    from amqp_dispatcher.runtime.runner import run_service

    mine, theirs = plain.socketpair()
    seen: list[str | None] = []
    monkeypatch.setenv("DISPATCHER_WORKER", f"1/2:{theirs.fileno()}")
    described = service((), (), startup_handler=lambda: seen.append(os.environ.get("DISPATCHER_WORKER")))
    runner = gevent.spawn(run_service, described, MemoryTransport(MemoryBroker()))
    wait_for(lambda: seen)
    mine.sendall(b"stop\n")
    assert runner.get(timeout=10) == ExitStatus.OK
    assert seen == [None]
    mine.close()
