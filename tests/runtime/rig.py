"""A consumer pool wired to the in-memory broker through the transport seam, for unit tests.

The pool, proxy, policies, publisher and supervisor are the real ones; only the broker is in
memory. Nothing here sleeps and counts: tests wait for a condition, under a bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent

from amqp_dispatcher.runtime.memory import MemoryBroker, MemoryTransport
from amqp_dispatcher.runtime.pool import ConsumerPool
from amqp_dispatcher.runtime.publisher import Publisher
from amqp_dispatcher.runtime.settings import parse_url
from amqp_dispatcher.runtime.spec import ConsumerEntry, ErrorPolicy, Exchange, Queue, Requeue, Retry, Service

SETTINGS = parse_url("amqp://guest:guest@memory/", default_heartbeat=20)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the greenlets run until the predicate holds (a bound, not a timing assertion)."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {predicate}")):
        while not predicate():
            gevent.sleep(0.005)


def queue(name: str, **arguments: Any) -> Queue:
    return Queue(
        name=name, durable=True, auto_delete=False, exclusive=False, passive=False, arguments=arguments, bindings=()
    )


def service(
    consumers: tuple[ConsumerEntry[Any], ...],
    queues: tuple[Queue, ...],
    exchanges: tuple[Exchange, ...] = (),
    **settings: Any,
) -> Service[Any, Any]:
    """A service as a generated package describes it, with quiet defaults for a unit test."""
    defaults: dict[str, Any] = {
        "name": "test",
        "config_sha256": "0" * 64,
        "monkey_patch": False,
        "heartbeat": 20,
        "shutdown_timeout": 5.0,
        "startup_timeout": 10.0,
        "blocking_threshold": 0.0,  # no watchdog thread in a unit test
        "on_unroutable": "log",
        "http": None,
        "startup_handler": None,
    }
    return Service(**{**defaults, **settings}, exchanges=exchanges, queues=queues, consumers=consumers)


def retry_policy(max_attempts: int = 3, queue_name: str = "q") -> Retry:
    return Retry(
        max_attempts=max_attempts,
        delays=(1.0,),
        delay_queues=(f"{queue_name}.retry.1s",),
        parking_queue=f"{queue_name}.parked",
    )


def declare(broker: MemoryBroker, entry: ConsumerEntry[Any]) -> None:
    """The entry's queue, the retry policy's queues, a direct exchange `ex` and a dead-letter queue."""
    broker.declare_exchange(
        Exchange(name="ex", type="direct", durable=True, auto_delete=False, internal=False, passive=False, arguments={})
    )
    broker.declare_queue(queue("dead"))
    broker.declare_queue(queue(entry.queue, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}))
    if isinstance(entry.on_error, Retry):
        for name in entry.on_error.delay_queues:
            broker.declare_queue(
                queue(name, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": entry.queue})
            )
        broker.declare_queue(queue(entry.on_error.parking_queue))


class Rig:
    """One consumer entry, consuming from queue `q` of an in-memory broker."""

    def __init__(
        self, consumer: type, *, count: int = 1, prefetch: int = 10, on_error: ErrorPolicy | None = None, **pool: Any
    ) -> None:
        self.entry = ConsumerEntry(
            consumer=consumer,
            queue="q",
            consumer_count=count,
            prefetch_count=prefetch,
            on_error=on_error or Requeue(),
        )
        self.broker = MemoryBroker()
        self.transport = MemoryTransport(self.broker)
        declare(self.broker, self.entry)
        self.publisher = Publisher(SETTINGS, "test", self.transport)
        self.pool = ConsumerPool(self.entry, self.publisher, **pool)
        self.connection = self.transport.connect(SETTINGS, name="test")
        self.pool.start()
        self.pool.attach(self.connection)

    def send(self, number: int, body: bytes = b"x", **options: Any) -> None:
        """A message with message_id `number`; `headers` and `undecodable` as the broker takes them."""
        headers = options.pop("headers", None)
        properties = {"message_id": str(number), **({"headers": headers} if headers else {})}
        self.broker.publish("", "q", body, properties, **options)

    def settled(self, number: int) -> list[tuple[str, bool]]:
        """Every answer given for the message, in order."""
        return [
            (answer.how, answer.requeue)
            for answer in self.broker.settled
            if answer.message.properties.get("message_id") == str(number)
        ]

    def ready(self, queue_name: str) -> list[Any]:
        return self.broker.ready(queue_name)

    def close(self) -> None:
        """Stop everything; and whatever the test asserted, the runtime never broke the protocol
        (answered a message twice, or on a channel that does not hold it)."""
        self.pool.stop()
        self.pool.close()
        self.publisher.close()
        self.connection.close()
        assert self.broker.protocol_errors == [], self.broker.protocol_errors
