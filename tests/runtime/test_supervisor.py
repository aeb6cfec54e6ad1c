"""The connection supervisor on the in-memory broker: connect, declare, reconnect, give up.

What users rely on: the service declares its topology and consumes; when the broker goes away
it reconnects by itself (with jittered, capped backoff) and consumes again, nothing lost; a
consumer the broker cancels consumes again; a broker that never answers at start ends the
service (exit 3) after startup_timeout; a refusal that retrying cannot fix ends it at once.
"""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime import supervisor as supervisor_module
from amqp_dispatcher.runtime.errors import BrokerUnreachable, DeclarationRefused
from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.pool import ConsumerPool
from amqp_dispatcher.runtime.publisher import Publisher
from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Queue, Requeue, Service

from .rig import SETTINGS, service, wait_for

consumed: list[bytes] = []


class Collector:
    def consume(self, amqp: Any, msg: Any) -> None:
        consumed.append(msg.body)

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    consumed.clear()
    monkeypatch.setattr(supervisor_module, "RECONNECT_BASE", 0.001)
    monkeypatch.setattr(supervisor_module, "RECONNECT_CAP", 0.005)
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.005)


def described(startup_timeout: float = 10.0, **queue_arguments: Any) -> Service[Any, Any]:
    """Topic exchange `events` routes order.* to queue `work`, which two Collectors consume."""
    work = Queue(
        name="work",
        durable=True,
        auto_delete=False,
        exclusive=False,
        passive=False,
        arguments=queue_arguments,
        bindings=(Binding(exchange="events", routing_key="order.*", arguments={}),),
    )
    events = Exchange(
        name="events", type="topic", durable=True, auto_delete=False, internal=False, passive=False, arguments={}
    )
    entry = ConsumerEntry(consumer=Collector, queue="work", consumer_count=2, prefetch_count=5, on_error=Requeue())
    return service((entry,), (work,), (events,), startup_timeout=startup_timeout)


class Running:
    """A supervisor and its pools over one in-memory broker, run in a greenlet."""

    def __init__(self, broker: MemoryBroker, described: Service[Any, Any]) -> None:
        self.transport = MemoryTransport(broker)
        self.publisher = Publisher(SETTINGS, "test", self.transport)
        self.pools = [ConsumerPool(entry, self.publisher) for entry in described.consumers]
        self.supervisor = supervisor_module.ConnectionSupervisor(
            described, SETTINGS, self.pools, "test", self.transport
        )
        for pool in self.pools:
            pool.start()
        self.greenlet = gevent.spawn(self.supervisor.run)

    def close(self) -> None:
        self.supervisor.stop()
        for pool in self.pools:
            pool.stop()
            pool.close()
        self.greenlet.kill()
        self.supervisor.close()


def test_it_declares_the_topology_and_consumes_what_is_routed_to_it() -> None:
    broker = MemoryBroker()
    running = Running(broker, described())
    try:
        assert running.supervisor.ready.wait(5)
        assert broker.publish("events", "order.created", b"one") == 1, "the binding routes order.* to work"
        assert broker.publish("events", "refund.created", b"other") == 0
        wait_for(lambda: consumed == [b"one"])
    finally:
        running.close()


def test_after_the_broker_goes_away_it_reconnects_and_consumes_again() -> None:
    broker = MemoryBroker()
    running = Running(broker, described())
    try:
        assert running.supervisor.ready.wait(5)
        broker.stop()
        broker.publish("", "work", b"while away")  # queues survive, as durable queues do
        wait_for(lambda: running.transport.refused >= 2)  # it keeps trying while the broker refuses
        assert running.transport.opened == 1 and not consumed
        broker.start()
        wait_for(lambda: consumed == [b"while away"])
        assert running.transport.opened == 2
        assert not running.supervisor.failure.ready()
    finally:
        running.close()


def test_even_the_first_reconnect_waits_a_random_moment_so_a_fleet_does_not_return_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[tuple[float, float]] = []
    real = supervisor_module.random.uniform
    monkeypatch.setattr(
        supervisor_module.random, "uniform", lambda low, high: draws.append((low, high)) or real(low, high)
    )
    broker = MemoryBroker()
    running = Running(broker, described())
    try:
        assert running.supervisor.ready.wait(5)
        assert draws == [], "connecting at start waits for nothing"
        broker.stop()
        wait_for(lambda: draws)
        assert draws[0] == (0, supervisor_module.RECONNECT_BASE), "full jitter below the first bound"
        broker.start()
        wait_for(lambda: running.transport.opened == 2)
    finally:
        running.close()


def test_a_consumer_the_broker_cancels_consumes_again() -> None:
    broker = MemoryBroker()
    running = Running(broker, described())
    try:
        assert running.supervisor.ready.wait(5)
        broker.cancel_consumers("work")
        assert broker.queues["work"].consumers == []
        wait_for(lambda: broker.queues["work"].consumers)
        broker.publish("", "work", b"after the cancel")
        wait_for(lambda: consumed == [b"after the cancel"])
    finally:
        running.close()


def test_a_broker_that_never_answers_at_start_ends_it_after_startup_timeout() -> None:
    broker = MemoryBroker()
    broker.stop()
    running = Running(broker, described(startup_timeout=0.05))
    try:
        failure = running.supervisor.failure.get(timeout=5)
        assert isinstance(failure, BrokerUnreachable)
        assert "gave up after 0.05 s (startup_timeout)" in str(failure)
        assert not running.supervisor.ready.is_set()
    finally:
        running.close()


def test_a_refused_declaration_ends_it_at_once_with_the_operators_advice() -> None:
    broker = MemoryBroker()
    broker.declare_queue(
        Queue(name="work", durable=True, auto_delete=False, exclusive=False, passive=False, arguments={}, bindings=())
    )
    running = Running(broker, described(**{"x-queue-type": "quorum"}))  # the queue exists with other arguments
    try:
        failure = running.supervisor.failure.get(timeout=5)
        assert isinstance(failure, DeclarationRefused) and failure.reply_code == 406
        assert "change the config to match, or delete it" in str(failure)
        assert running.transport.opened == 1, "no retrying what retrying cannot fix"
    finally:
        running.close()
