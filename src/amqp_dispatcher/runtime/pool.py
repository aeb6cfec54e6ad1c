"""A consumer pool: one consumers[] entry, its channel, and its consumer_count instances.

Owns the entry's channel (prefetch, consume, cancel), the local queue that the transport's
hub callback fills, and the worker greenlets that each run one instance of the user's class, one
message at a time. Owns the failure contract: settle the message, call shutdown(exc), replace
the instance, backing off exponentially so that a consumer failing on every message never
spins the CPU. Owns the pool's own survival too: a worker that ends for any reason but the
pool's stop is replaced, its unanswered message requeued, so a pool never sits alive with
fewer workers than instances. Knows nothing of connecting or reconnecting: the supervisor
attaches it to each new connection and detaches it when one is lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.queue

from .clock import REAL, Clock
from .errors import BrokerError, Fatal
from .jsonlogs import GREENLET_FIELDS
from .logs import POOL, PrefixedLog
from .metrics import EntryMetrics
from .policy import restore_origin, settle_failure, settle_undecodable
from .proxy import AMQPProxy
from .publisher import Publisher
from .spec import ConsumerProtocol, LiveEntry
from .tracing import Tracer
from .transport import Channel, Connection, Delivery

# Replacing a failed instance waits BACKOFF_BASE, doubling with each failure in a row, up to
# BACKOFF_CAP; a success resets it. Re-opening a closed channel backs off the same way.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
# Unexpected failures in a row of re-attaching a channel before the service stops (exit 4).
_REATTACH_CRASHES = 5
# 2 ** 16 times any base here is far past its cap; a larger power only risks overflowing a float.
_MAX_DOUBLINGS = 16


def doubling(base: float, doublings: int, cap: float) -> float:
    """`base` doubled `doublings` times, at most `cap`: for any count however large (the pool's
    backoff and the supervisor's reconnect delays both grow so)."""
    return min(cap, base * 2.0 ** min(max(doublings, 0), _MAX_DOUBLINGS))


def backoff(failures: int) -> float:
    """The wait after `failures` failures in a row."""
    return doubling(BACKOFF_BASE, failures - 1, BACKOFF_CAP)


def consumer_name(entry: LiveEntry) -> str:
    factory = entry.consumer
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"


class ConsumerPool:
    """Runs one consumer entry. Lifecycle: start, attach/detach (per connection), stop, close."""

    def __init__(
        self, entry: LiveEntry, publisher: Publisher, *, raise_unroutable: bool = False, clock: Clock = REAL
    ) -> None:
        self.entry = entry
        self.clock = clock  # the backoffs' waits: the test kit's clock moves only when a test moves it
        self.name = consumer_name(entry)
        self.log = PrefixedLog(
            POOL, f"consumer {self.name} on queue {entry.queue!r}", {"consumer": self.name, "queue": entry.queue}
        )
        self.undecodable = 0  # messages set aside because their headers could not be decoded
        self.metrics: EntryMetrics | None = None  # set by the runner when the HTTP endpoint is on
        self.tracer: Tracer | None = None  # set by the runner when OpenTelemetry is configured
        self._publisher = publisher
        self._raise_unroutable = raise_unroutable
        self._inbox: gevent.queue.Queue[Delivery] = gevent.queue.Queue()
        self._channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._connection: Connection | None = None
        self._accepting = False
        self._stopping = False
        self._workers: dict[int, gevent.Greenlet[Any, None]] = {}
        self._instances: dict[int, ConsumerProtocol] = {}
        self._busy: set[int] = set()
        self._creating: set[int] = set()  # slots whose consumer class is being instantiated
        # What each busy worker is handling, so that a worker that dies leaves no message unanswered.
        self._current: dict[int, Delivery] = {}
        self._crashes: dict[int, int] = {}  # unexpected ends of each slot's worker in a row
        self._reattach_crashes = 0
        # Set when the last busy instance finishes; only wait_idle() clears and waits on it, so
        # the per-message path costs a set lookup, not an Event.
        self._idle = gevent.event.Event()
        self._recovery: gevent.Greenlet[Any, None] | None = None
        # Ends the service: a broker refusal (exit 3), or anything else (an internal error, exit 4).
        self.on_fatal: Callable[[Exception], None] = lambda error: None
        self.redeclare: Callable[[Channel], None] = lambda channel: None

    @property
    def is_stopping(self) -> bool:
        return self._stopping

    @property
    def in_flight(self) -> int:
        """Deliveries being handled now."""
        return len(self._busy)

    @property
    def creating(self) -> int:
        """Instances being created now (a constructor may wait on I/O)."""
        return len(self._creating)

    @property
    def waiting(self) -> int:
        """Deliveries received and not yet taken by an instance."""
        return self._inbox.qsize()

    @property
    def live_instances(self) -> int:
        return len(self._instances)

    @property
    def is_consuming(self) -> bool:
        """A live consumer: consume-ok seen, not cancelled by the broker, its channel open."""
        channel = self._channel
        return self._accepting and self._consumer_tag is not None and channel is not None and channel.is_open

    def __repr__(self) -> str:
        state = "stopping" if self._stopping else "consuming" if self._accepting else "waiting for a channel"
        busy = f"{len(self._busy)}/{self.entry.consumer_count} busy"
        return f"<ConsumerPool {self.name} on {self.entry.queue!r} {busy} {state}>"

    # Lifecycle, driven by the supervisor and the runner.

    def start(self) -> None:
        """Create the instances (in their worker greenlets); they wait for messages."""
        for slot in range(self.entry.consumer_count):
            self._spawn(slot)

    def attach(self, connection: Connection) -> None:
        """Open this entry's channel on a new connection and start consuming."""
        channel = connection.channel()
        channel.add_close_callback(lambda reason: self._channel_closed(channel, reason))
        channel.qos(self.entry.prefetch_count)
        self._consumer_tag = None  # until the broker's consume-ok
        self._connection, self._channel, self._accepting = connection, channel, True
        try:
            self._consumer_tag = channel.consume(self.entry.queue, self._deliver, on_cancel=self._cancelled_by_broker)
        except BrokerError:
            self._accepting = False
            raise
        self.log.info(
            "consuming on channel %d with %d instances, prefetch %d",
            channel.number,
            self.entry.consumer_count,
            self.entry.prefetch_count,
        )

    def detach(self) -> None:
        """The connection is gone: the broker has requeued every unacknowledged message."""
        self._accepting = False
        self._channel = None
        self._connection = None
        dropped = self._drop_inbox()
        if dropped:
            self.log.info("dropped %d prefetched messages of the lost connection (the broker requeued them)", dropped)

    def stop(self) -> None:
        """Stop taking messages: return unstarted ones to the queue, then cancel the consumer."""
        # No greenlet switch until the inbox is empty, so no idle instance can start another
        # message; what arrives from now on is returned by _deliver, then by the transport's cancel.
        self._stopping = True
        self._accepting = False
        if self._recovery is not None:
            self._recovery.kill(block=False)
        returned = 0
        while not self._inbox.empty():
            if self._inbox.get_nowait().nack(requeue=True):
                returned += 1
        if returned:
            self.log.info("returned %d prefetched messages to the queue", returned)
        channel, tag = self._channel, self._consumer_tag
        if channel is not None and tag is not None:
            channel.cancel(tag)

    def wait_idle(self, timeout: float, interrupt: gevent.event.Event) -> bool:
        """Wait until no instance is handling a message; False on timeout or interrupt."""
        if self._busy:
            self._idle.clear()
            gevent.wait([self._idle, interrupt], count=1, timeout=max(timeout, 0))
        return not self._busy

    def close(self) -> None:
        """Stop the idle workers and call shutdown(None) once on each idle instance."""
        self._stopping = True
        busy = sorted(self._busy)
        idle = [slot for slot in self._workers if slot not in self._busy]
        gevent.killall([self._workers[slot] for slot in idle])
        for slot in idle:
            instance = self._instances.pop(slot, None)
            if instance is not None:
                self._call_shutdown(instance, None)
        if busy:
            self.log.warning("%d instances were still handling a message and were not shut down", len(busy))

    # Hub callbacks: they must never block.

    def _deliver(self, delivery: Delivery) -> None:
        if self._accepting and delivery.channel is self._channel:
            self._inbox.put_nowait(delivery)
        else:
            delivery.nack(requeue=True)

    def _channel_closed(self, channel: Channel, reason: BrokerError) -> None:
        if channel is not self._channel or self._stopping:
            return
        connection = self._connection
        if connection is None or not connection.is_open:
            return  # the whole connection is going; the supervisor reconnects
        self._accepting = False
        self._channel = None
        self.log.error("the broker closed the channel: %s", reason)
        self._recover(connection)

    def _cancelled_by_broker(self) -> None:
        channel, connection = self._channel, self._connection
        if self._stopping or channel is None or connection is None:
            return
        self.log.warning("the broker cancelled the consumer (was the queue deleted?); consuming again")
        if self.metrics is not None:
            self.metrics.cancels += 1
        self._accepting = False
        self._channel = None
        channel.close()
        self._recover(connection)

    def _recover(self, connection: Connection) -> None:
        self._drop_inbox()
        if self._recovery is None or self._recovery.dead:
            self._recovery = gevent.spawn(self._run_reattach, connection)

    def _worker_ended(self, slot: int, worker: gevent.Greenlet[Any, None]) -> None:
        """Only the pool's stop may end a worker: any other end is replaced, after a backoff."""
        if self._stopping or self._workers.get(slot) is not worker:
            return
        self._busy.discard(slot)
        if not self._busy:
            self._idle.set()
        delivery = self._current.pop(slot, None)
        if delivery is not None:
            if not delivery.settled:
                delivery.outcome = "requeue" if delivery.reject(requeue=True) else "dropped_stale"
            if self.metrics is not None:  # answered or not, it was received: count where it went
                self.metrics.count(delivery.outcome)
        if self.metrics is not None:
            self.metrics.replacements += 1
        crashes = self._crashes[slot] = self._crashes.get(slot, 0) + 1
        delay = backoff(crashes)
        self.log.error("the worker of instance %d ended unexpectedly; replacing it in %.1f s", slot, delay)
        self._spawn(slot, retired=self._instances.pop(slot, None), delay=delay)

    # Greenlets.

    def _spawn(self, slot: int, *, retired: ConsumerProtocol | None = None, delay: float = 0.0) -> None:
        worker = gevent.spawn(self._run_worker, slot, retired, delay)
        # The watchdog names a blocking greenlet by this name.
        worker.name = f"consumer {self.name} on queue {self.entry.queue!r} (instance {slot})"
        worker.link(functools.partial(self._worker_ended, slot))
        # JSON log lines from this worker, the user's included, name the entry and the delivery in hand.
        setattr(worker, GREENLET_FIELDS, functools.partial(self._log_fields, slot))
        self._workers[slot] = worker

    def _log_fields(self, slot: int) -> dict[str, object]:
        fields: dict[str, object] = {"consumer": self.name, "queue": self.entry.queue}
        delivery = self._current.get(slot)
        if delivery is not None:
            properties = delivery.message.properties
            fields.update(
                delivery_tag=delivery.tag,
                message_id=properties.get("message_id"),
                correlation_id=properties.get("correlation_id"),
            )
        return fields

    def _run_worker(self, slot: int, retired: ConsumerProtocol | None, delay: float) -> None:
        try:
            if retired is not None:
                self._call_shutdown(retired, None)
            if delay:
                self.clock.sleep(delay)
            self._work(slot)
        except Exception:  # last resort: our own code failed; _worker_ended replaces this worker
            self.log.exception("the worker of instance %d failed", slot)

    def _run_reattach(self, connection: Connection) -> None:
        """_reattach, with a last resort: a bug in it is retried a few times, then ends the service,
        rather than leave the entry alive without a consumer."""
        try:
            self._reattach(connection)
        except Exception as bug:  # last resort: our own code failed
            self._reattach_crashes += 1
            if self._reattach_crashes >= _REATTACH_CRASHES:
                self.log.exception("consuming again failed unexpectedly %d times; stopping", self._reattach_crashes)
                self.on_fatal(bug)
                return
            self.log.exception("consuming again failed unexpectedly; trying again")
            self._recovery = gevent.spawn(self._run_reattach, connection)
        else:
            self._reattach_crashes = 0

    def _reattach(self, connection: Connection) -> None:
        failures = 0
        while not self._stopping and connection.is_open:
            failures += 1
            self.clock.sleep(backoff(failures))
            try:
                channel = connection.channel()
                self.redeclare(channel)
                channel.close()
                self.attach(connection)
                return
            except Fatal as error:
                self.on_fatal(error)
                return
            except BrokerError as error:
                self.log.warning("cannot consume again yet (%s); retrying", error)

    def _work(self, slot: int) -> None:
        failures = 0
        instance = self._create(slot)
        while instance is not None and not self._stopping:
            delivery = self._inbox.get()
            if not delivery.channel.is_open:
                continue  # its channel closed while it waited: the broker has requeued it
            if self.is_stopping:
                delivery.nack(requeue=True)
                break
            self._busy.add(slot)
            self._current[slot] = delivery
            metrics = self.metrics  # None unless the HTTP endpoint is on: then nothing is counted
            started = metrics.delivered(delivery.message) if metrics is not None else 0.0
            # No try/finally: if this fails, _worker_ended needs to see what was in hand.
            if delivery.undecodable is None:
                traced = self.tracer is not None
                error = self._handle(instance, delivery) if not traced else self._handle_traced(instance, delivery)
                set_aside = True
            else:
                error, set_aside = None, self._set_aside(delivery)
            if metrics is not None:
                metrics.answered(delivery.outcome, started)
            del self._current[slot]
            self._busy.discard(slot)
            if not self._busy:
                self._idle.set()
            if not set_aside:  # the parking queue cannot take it yet: back off, keep the instance
                failures += 1
                self.clock.sleep(backoff(failures))
                continue
            if error is None:
                failures = 0
                if self._crashes:
                    self._crashes.pop(slot, None)
                continue
            failures += 1
            self._instances.pop(slot, None)
            if metrics is not None:
                metrics.replacements += 1
            self._call_shutdown(instance, error)
            delay = backoff(failures)
            self.log.warning(
                "replacing instance %d in %.1f s (%d failure%s in a row)", slot, delay, failures, "s" * (failures > 1)
            )
            self.clock.sleep(delay)
            instance = self._create(slot) if not self._stopping else None

    def _set_aside(self, delivery: Delivery) -> bool:
        """An undecodable message: parked or dead-lettered, never consumed; False if it went back."""
        outcome = settle_undecodable(delivery, self.entry, self.name, self._publisher, self.log)
        if outcome is None:
            return False
        self.undecodable += 1
        assert delivery.undecodable is not None
        self.log.error(
            "delivery %d cannot be decoded (%s): %s; %d undecodable so far",
            delivery.tag,
            delivery.undecodable.reason,
            outcome,
            self.undecodable,
        )
        return True

    def _handle_traced(self, instance: ConsumerProtocol, delivery: Delivery) -> BaseException | None:
        tracer = self.tracer
        assert tracer is not None
        with tracer.consuming(self.name, self.entry.queue, delivery) as span:
            error = self._handle(instance, delivery)
            if error is not None:
                tracer.failed(span, error)
            return error

    def _handle(self, instance: ConsumerProtocol, delivery: Delivery) -> BaseException | None:
        proxy = AMQPProxy(
            delivery, self._publisher, self.log, raise_unroutable=self._raise_unroutable, tracer=self.tracer
        )
        restore_origin(delivery.message)
        try:
            instance.consume(proxy, delivery.message)
        except BaseException as error:  # the user's code must never take the service down
            if self._is_our_kill(error):
                raise
            self.log.exception("consume raised on delivery %d", delivery.tag)
            if not proxy.has_responded_to_message:
                settle_failure(delivery, error, self.entry, self.name, self._publisher, self.log)
            return error
        if not proxy.has_responded_to_message:
            proxy.ack()
        return None

    def _create(self, slot: int) -> ConsumerProtocol | None:
        failures = 0
        while not self._stopping:
            self._creating.add(slot)
            try:
                instance = self.entry.consumer()
            except BaseException as error:  # a failing __init__ must not end the pool
                self._creating.discard(slot)  # before the backoff: waiting is not creating
                if self._is_our_kill(error):
                    raise
                failures += 1
                delay = backoff(failures)
                self.log.exception("creating instance %d failed; trying again in %.1f s", slot, delay)
                self.clock.sleep(delay)
                continue
            finally:
                self._creating.discard(slot)
            self._instances[slot] = instance
            return instance
        return None

    def _call_shutdown(self, instance: ConsumerProtocol, error: BaseException | None) -> None:
        try:
            instance.shutdown(error)
        except BaseException as failure:  # a failing shutdown changes nothing: the instance goes anyway
            if self._is_our_kill(failure):
                raise
            self.log.exception("shutdown(%r) raised", error)

    def _is_our_kill(self, error: BaseException) -> bool:
        """Whether this is close() stopping the worker; any other GreenletExit is the user's failure."""
        return self.is_stopping and isinstance(error, gevent.GreenletExit)

    def _drop_inbox(self) -> int:
        dropped = 0
        while not self._inbox.empty():
            self._inbox.get_nowait()
            dropped += 1
        return dropped
