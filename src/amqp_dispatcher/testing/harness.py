"""The test kit's harness: a generated service running on an in-memory broker, on a test's clock.

Owns starting and stopping the service in the test's process, publishing as another
application would, running until nothing moves, moving the clock, and the views a test asserts
on: queues, answers, what the consumers published, and what they raised. The service runs
through the real runner, pools, proxy, error policies and publisher; only the broker is
replaced, at the transport seam (runtime/memory). Knows nothing of pytest (plugin.py does).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Iterable, Mapping
from types import ModuleType, TracebackType
from typing import Any

import gevent
import gevent.event

from ..runtime.clock import ManualClock
from ..runtime.errors import BrokerError, DeclarationRefused
from ..runtime.logs import ROOT
from ..runtime.memory import MemoryBroker, MemoryTransport
from ..runtime.runner import ServiceRunner
from ..runtime.settings import parse_url
from ..runtime.spec import LiveService, Retry, Service
from .views import Answer, DroppedMessage, Failure, QueuedMessage, answers, failure_of, view

_SETTINGS = parse_url("amqp://guest:guest@memory/", default_heartbeat=60)
# How many turns of the hub in a row must change nothing before the service counts as idle.
_QUIET_TURNS = 5


class KitError(Exception):
    """A test used the kit wrongly, or the service could not run on it: the message says how."""


class StillRunning(KitError):
    """The service did not come to rest within the bound a test gave."""


class Harness:
    """A service on an in-memory broker. Use it as a context manager, or start() and stop().

    `service` is the generated package (its module or its name, e.g. "service"), or its
    SERVICE. The clock starts at 0 and moves only in `advance` and `run_until_done`: TTLs,
    retry delays and the backoff before a failed consumer's replacement all run on it.
    `timeout` bounds, in real seconds, how long a handler may run before the kit gives up.
    The startup handler does not run unless `startup_handler=True` (it often reaches systems
    a unit test should not).
    """

    def __init__(
        self,
        service: LiveService | ModuleType | str,
        *,
        timeout: float = 10.0,
        startup_handler: bool = False,
        clock: ManualClock | None = None,
    ) -> None:
        live = _resolve(service)
        self.service: LiveService = dataclasses.replace(live, blocking_threshold=0.0, http=None, processes=1)
        self.clock = clock or ManualClock()
        if clock is None:
            self.clock.settle = self.run_until_idle
        else:  # a clock shared with other harnesses: each comes to rest after every timer
            others = clock.settle

            def settle() -> None:
                others()
                self.run_until_idle()

            self.clock.settle = settle
        self.broker = MemoryBroker(clock=self.clock)
        self.timeout = timeout
        self._startup_handler = startup_handler
        self._runner: ServiceRunner | None = None
        self._greenlet: gevent.Greenlet[[], int] | None = None
        self._capture = _Capture()
        self.status: int | None = None  # the exit status once stopped

    def __repr__(self) -> str:
        state = "stopped" if self.status is not None else "running" if self._runner else "not started"
        return f"<Harness {self.service.name} {state}, clock at {self.clock.monotonic():g} s, {self.broker!r}>"

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # Life.

    def start(self) -> Harness:
        """Declare the topology and start consuming; raises KitError if the service cannot start."""
        if self._runner is not None:
            raise KitError("this harness has already been started; make a new one for a new run")
        logging.getLogger(ROOT).addHandler(self._capture)
        try:
            self._start()
        except BaseException:
            logging.getLogger(ROOT).removeHandler(self._capture)
            if self._greenlet is not None:
                self._greenlet.kill()
            self.status = -1
            raise
        return self

    def _start(self) -> None:
        if self._startup_handler and self.service.startup_handler is not None:
            try:
                self.service.startup_handler()
            except Exception as error:  # the user's handler: say which, keep its traceback
                raise KitError(f"the startup handler raised {type(error).__name__}: {error}") from error
        self._runner = ServiceRunner(self.service, _SETTINGS, MemoryTransport(self.broker), clock=self.clock)
        self._greenlet = gevent.spawn(self._runner.serve)
        ready = self._runner.supervisor.ready
        waiting: list[gevent.event.Event | gevent.Greenlet[[], int]] = [ready, self._greenlet]
        gevent.wait(waiting, count=1, timeout=self.timeout)
        if not ready.is_set():
            status = self._greenlet.value if self._greenlet.ready() else None
            raise KitError(f"the service did not start (exit status {status}): {self._capture.last_error()}")
        self.run_until_idle()

    def stop(self) -> int:
        """Stop as SIGTERM would, now: handlers in flight finish, messages delivered but not started
        go back to their queues, what is queued stays queued. Returns the exit status."""
        if self._runner is None or self._greenlet is None:
            raise KitError("the harness was never started")
        if self.status is None:
            try:
                for pool in self._runner.pools:  # now, before the hub turns: nothing more starts
                    pool.stop()
                self._runner.stop()
                status = self._greenlet.get(timeout=self.timeout + self.service.shutdown_timeout)
                self.status = int(status)
            finally:
                logging.getLogger(ROOT).removeHandler(self._capture)
                if self.status is None:
                    self._greenlet.kill()
                    self.status = -1
        return self.status

    # Doing things.

    def publish(
        self,
        exchange: str,
        routing_key: str = "",
        body: bytes | str = b"",
        *,
        headers: Mapping[str, Any] | None = None,
        mandatory: bool = False,
        **properties: Any,
    ) -> int:
        """Publish as another application would; how many queues received it.

        Nothing is consumed until the service runs (`run_until_idle`, `advance`...). Properties
        are AMQP's: content_type, delivery_mode, message_id, expiration (milliseconds, as text)..."""
        if exchange not in self.broker.exchanges:
            known = ", ".join(
                repr(name) for name in sorted(self.broker.exchanges) if name and not name.startswith("amq.")
            )
            raise KitError(f"no exchange {exchange!r} in the service's topology (it has: {known or 'none'})")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if headers is not None:
            properties["headers"] = dict(headers)
        bound = self.broker.targets(exchange, routing_key, properties.get("headers") or {})
        try:
            routed = self.broker.publish(exchange, routing_key, bytes(body), properties)
        except DeclarationRefused as refusal:  # what RabbitMQ closes a publisher's channel for
            raise KitError(f"RabbitMQ would refuse this publish: {refusal}") from None
        if mandatory and routed == 0:
            if bound:
                raise KitError(f"every queue bound for {routing_key!r} on {exchange!r} refused it (it is full)")
            raise KitError(f"no queue is bound to receive {routing_key!r} from exchange {exchange!r}")
        return routed

    def send(
        self, queue: str, body: bytes | str = b"", *, headers: Mapping[str, Any] | None = None, **properties: Any
    ) -> None:
        """Publish straight to a queue (through the default exchange)."""
        if queue not in self.broker.queues:
            raise KitError(
                f"no queue {queue!r} in the service's topology (it has: {', '.join(sorted(self.broker.queues))})"
            )
        self.publish("", queue, body, headers=headers, **properties)

    def run_until_idle(self) -> None:
        """Run the service until nothing moves without the clock moving: every message that can be
        delivered has been, every handler has returned, and no instance is being created. Raises
        StillRunning if that takes more than `timeout` real seconds: a handler still running, or
        a service that never comes to rest (a consumer that requeues every message).
        Greenlets a consumer spawns itself are not waited for."""
        deadline = time.monotonic() + self.timeout
        quiet, last = 0, None
        while quiet < _QUIET_TURNS:
            gevent.sleep(0)
            state = self._state()
            busy = self._busy()
            quiet = quiet + 1 if state == last and not busy else 0
            last = state
            if time.monotonic() > deadline:
                doing = ", ".join(busy) if busy else "messages keep moving (is a message requeued for ever?)"
                raise StillRunning(f"the service is still running after {self.timeout:g} s: {doing}")
            if busy:
                gevent.sleep(0.001)  # waiting on real time or I/O: do not spin

    def advance(self, seconds: float) -> None:
        """Move the clock forward, running everything that falls due on the way (TTLs expire,
        delayed retries come back, failed consumers are replaced), then run until idle."""
        self.clock.advance(seconds)

    def run_until_done(self, limit: float = 3600.0) -> float:
        """Run, moving the clock from one timer to the next, until nothing is left to happen;
        how many seconds of the clock that took. Raises StillRunning past `limit` clock seconds
        (a message that fails for ever under on_error: requeue never comes to rest)."""
        started = self.clock.monotonic()
        self.run_until_idle()
        while (due := self.clock.next_deadline()) is not None:
            if due - started > limit:
                raise StillRunning(f"still going after {limit:g} s of the clock: {self._describe_pending()}")
            self.clock.fire_next(due)
        return self.clock.monotonic() - started

    # Looking.

    def messages(self, queue: str) -> list[QueuedMessage]:
        """What waits in a queue, head first."""
        self._known_queue(queue)
        return [view(stored) for stored in self.broker.ready(queue)]

    def bodies(self, queue: str) -> list[bytes]:
        return [message.body for message in self.messages(queue)]

    def parking_queue(self, queue: str) -> str:
        """The queue where a retry policy parks what fails on `queue` for the last time."""
        for entry in self.service.consumers:
            if entry.queue == queue and isinstance(entry.on_error, Retry):
                return entry.on_error.parking_queue
        raise KitError(f"no consumer of {queue!r} has on_error: retry, so nothing is parked for it")

    def parked(self, queue: str) -> list[QueuedMessage]:
        """What the retry policy parked for the consumers of `queue`, oldest first."""
        return self.messages(self.parking_queue(queue))

    @property
    def answers(self) -> list[Answer]:
        """Every ack, nack and reject the service gave, in order."""
        return answers(self.broker.settled)

    def acked(self, queue: str | None = None) -> list[QueuedMessage]:
        return [answer.message for answer in self.answers if answer.how == "ack" and _on(answer, queue)]

    def requeued(self, queue: str | None = None) -> list[QueuedMessage]:
        return [a.message for a in self.answers if a.how != "ack" and a.requeue and _on(a, queue)]

    def rejected(self, queue: str | None = None) -> list[QueuedMessage]:
        """Rejected or nacked without requeue: dead-lettered, or dropped if the queue has no DLX."""
        return [a.message for a in self.answers if a.how != "ack" and not a.requeue and _on(a, queue)]

    @property
    def dropped(self) -> list[DroppedMessage]:
        """Every message that left the broker without reaching a queue, and why: expired or
        rejected with no dead-letter exchange, pushed out of a full queue, unroutable..."""
        return [DroppedMessage(view(one.message), one.queue, one.reason, one.detail) for one in self.broker.dropped]

    @property
    def failures(self) -> list[Failure]:
        """What consumers raised, in order, with the consumer and queue."""
        return [failure for record in self._capture.records if (failure := failure_of(record)) is not None]

    @property
    def logs(self) -> list[logging.LogRecord]:
        """The runtime's log records while the harness ran."""
        return list(self._capture.records)

    # Inside.

    def _state(self) -> tuple[object, ...]:
        broker = self.broker
        queues = tuple((name, len(queue.ready)) for name, queue in broker.queues.items())
        unacked = sum(len(channel.unacked) for connection in broker.connections for channel in connection.channels)
        pools = tuple((pool.in_flight, pool.waiting, pool.live_instances) for pool in self._pools())
        records = len(broker.settled), len(broker.unroutable), len(broker.dropped), len(broker.dead_lettered)
        return queues, unacked, records, broker.pending_callbacks, pools, self.clock.pending

    def _busy(self) -> list[str]:
        """What runs on real time: handlers, constructors, and reconnecting to the broker."""
        busy = [repr(pool) for pool in self._pools() if pool.in_flight or pool.creating]
        runner = self._runner
        if runner is not None and not runner.supervisor.is_connected and self.status is None:
            busy.append("reconnecting to the broker")
        return busy

    def _pools(self) -> Iterable[Any]:
        return self._runner.pools if self._runner is not None else ()

    def _describe_pending(self) -> str:
        waiting = [f"{name!r} holds {len(queue.ready)}" for name, queue in self.broker.queues.items() if queue.ready]
        failing = self.failures[-1:] if self.failures else []
        parts = [*waiting, *(f"the last failure: {failure}" for failure in failing)]
        return "; ".join(parts) or f"{self.clock.pending} timers pending"

    def _known_queue(self, queue: str) -> None:
        if queue not in self.broker.queues:
            known = ", ".join(sorted(self.broker.queues))
            raise KitError(f"no queue {queue!r} in the service's topology (it has: {known or 'none'})")


def _on(answer: Answer, queue: str | None) -> bool:
    return queue is None or answer.queue == queue


def _resolve(service: LiveService | ModuleType | str) -> LiveService:
    if isinstance(service, str):
        try:
            service = importlib.import_module(service)
        except ImportError as error:
            raise KitError(f"cannot import the service package {service!r}: {error}") from error
    if isinstance(service, ModuleType):
        found = getattr(service, "SERVICE", None)
        if not isinstance(found, Service):
            raise KitError(f"{service.__name__} has no SERVICE: give a package built by dispatcher-build")
        return found
    if not isinstance(service, Service):
        raise KitError(f"expected a package built by dispatcher-build, its name, or its SERVICE, not {service!r}")
    return service


class _Capture(logging.Handler):
    """Keeps the runtime's records for `failures` and `logs`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def last_error(self) -> str:
        errors = [record for record in self.records if record.levelno >= logging.ERROR]
        return errors[-1].getMessage() if errors else "no error was logged"


__all__ = ["BrokerError", "Harness", "KitError", "StillRunning"]
