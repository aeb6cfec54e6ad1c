"""The in-memory broker's state: exchanges, queues, routing, and what a test can do to it.

Owns one vhost's entities and RabbitMQ's rules where the runtime relies on them: the default
exchange and the `amq.*` ones, routing for direct, fanout, topic (`*`, `#`) and headers
exchanges, declarations that must match what exists (406), passive checks (404), dead-letter
exchanges on reject or nack without requeue, alternate exchanges for what no binding routes,
requeued messages going back to the head of the queue marked redelivered, and round-robin
delivery within each channel's prefetch window. Deliveries and every callback run in the
gevent hub, as a real client library's do. A client that breaks the protocol (an unknown
delivery tag, such as a second answer) has its channel closed, as RabbitMQ does, and is
recorded in `protocol_errors`.

Not modelled (yet): message and queue TTL, `x-death`, max-length, quorum delivery limits,
exclusive ownership, auto-delete, flow control (blocking only sends connection.blocked).
Knows nothing of pools, consumers' classes or policies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent

from ..errors import AccessRefused, BrokerUnreachable, ConnectionLost, DeclarationRefused
from ..message import Undecodable
from ..spec import Binding, Exchange, Queue

if TYPE_CHECKING:
    from .channel import MemoryChannel, MemoryConnection

_PREDECLARED = {"": "direct", "amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic"}
_PREDECLARED |= {"amq.headers": "headers", "amq.match": "headers"}


@dataclass(slots=True)
class Stored:
    """A message as a queue holds it."""

    body: bytes
    properties: dict[str, Any]
    exchange: str
    routing_key: str
    redelivered: bool = False
    # Set for a message whose headers a real transport could not have decoded (a test's doing).
    undecodable: Undecodable | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """One answer a client gave: the message, how, whether requeued, and from which queue."""

    message: Stored
    how: str
    requeue: bool
    queue: str


@dataclass(slots=True, eq=False)
class Consumer:
    tag: str
    channel: MemoryChannel
    deliver: Any  # the channel's hand-over of one stored message


@dataclass(slots=True, eq=False)
class MemoryQueue:
    spec: Queue
    ready: deque[Stored] = field(default_factory=deque)
    consumers: list[Consumer] = field(default_factory=list)
    bindings: list[tuple[str, Binding]] = field(default_factory=list)  # (exchange, binding)

    @property
    def name(self) -> str:
        return self.spec.name


class MemoryBroker:
    """One vhost in memory. Tests inspect it and break it; the runtime reaches it through
    `MemoryTransport`, exactly as it reaches RabbitMQ through pika."""

    def __init__(self) -> None:
        self.exchanges: dict[str, Exchange] = {name: _exchange(name, kind) for name, kind in _PREDECLARED.items()}
        self.queues: dict[str, MemoryQueue] = {}
        self.connections: list[MemoryConnection] = []
        self.refusing: BaseException | None = None  # connect raises this while set
        self.nacking = False  # publisher confirms arrive as nacks
        self.silent = False  # no publisher confirm arrives at all
        self.unroutable: list[Stored] = []  # what no queue received
        self.settled: list[Settled] = []  # every ack, nack and reject, in order
        self.protocol_errors: list[str] = []  # what clients did that RabbitMQ closes a channel for
        self._dispatching = False

    def __repr__(self) -> str:
        ready = sum(len(queue.ready) for queue in self.queues.values())
        return f"<MemoryBroker {len(self.queues)} queues, {ready} ready, {len(self.connections)} connections>"

    # What a test does: put messages in, look, and break things.

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Mapping[str, Any] | None = None,
        *,
        undecodable: Undecodable | None = None,
    ) -> int:
        """Publish as another application would; returns how many queues received the message.

        `undecodable` makes it a message whose headers the transport cannot decode, as pika
        salvages it: the consumer gets the body and the reason, never the headers."""
        message = Stored(body, dict(properties or {}), exchange, routing_key, undecodable=undecodable)
        return self.route(exchange, routing_key, message)

    def ready(self, queue: str) -> list[Stored]:
        """The messages waiting in a queue, head first."""
        return list(self.queues[queue].ready)

    def stop(self, code: int = 320, text: str = "CONNECTION_FORCED - broker forced connection closure") -> None:
        """Close every connection from the broker's side and refuse new ones until `start`."""
        self.refusing = BrokerUnreachable("cannot connect to the in-memory broker: it is stopped")
        for connection in list(self.connections):
            connection.close_by_broker(ConnectionLost(f"{code} {text}", reply_code=code, reply_text=text))

    def start(self) -> None:
        self.refusing = None

    def refuse_credentials(self) -> None:
        self.refusing = AccessRefused("the broker refused the credentials")

    def cancel_consumers(self, queue: str) -> None:
        """What RabbitMQ does when a queue is deleted under its consumers: basic.cancel to each."""
        for consumer in list(self.queues[queue].consumers):
            consumer.channel.cancelled_by_broker(consumer.tag)

    def delete_queue(self, name: str) -> None:
        self.cancel_consumers(name)
        del self.queues[name]

    def block(self, blocked: bool = True) -> None:
        """connection.blocked (or unblocked) to every connection, as on a memory alarm."""
        for connection in list(self.connections):
            connection.blocked(blocked)

    # What channels do.

    def declare_exchange(self, exchange: Exchange) -> None:
        existing = self.exchanges.get(exchange.name)
        if exchange.passive:
            if existing is None:
                raise refused(404, f"NOT_FOUND - no exchange '{exchange.name}' in vhost '/'")
            return
        if exchange.name.startswith("amq.") and existing is None:
            raise refused(403, f"ACCESS_REFUSED - exchange name '{exchange.name}' contains reserved prefix 'amq.*'")
        if existing is not None and _exchange_settings(existing) != _exchange_settings(exchange):
            raise refused(406, f"PRECONDITION_FAILED - inequivalent arg for exchange '{exchange.name}'")
        self.exchanges.setdefault(exchange.name, exchange)

    def declare_queue(self, queue: Queue) -> None:
        existing = self.queues.get(queue.name)
        if queue.passive:
            if existing is None:
                raise refused(404, f"NOT_FOUND - no queue '{queue.name}' in vhost '/'")
            return
        if queue.name.startswith("amq."):
            raise refused(403, f"ACCESS_REFUSED - queue name '{queue.name}' contains reserved prefix 'amq.*'")
        if existing is not None:
            if _queue_settings(existing.spec) != _queue_settings(queue):
                raise refused(406, f"PRECONDITION_FAILED - inequivalent arg for queue '{queue.name}'")
            return
        self.queues[queue.name] = MemoryQueue(queue)

    def bind(self, queue: str, binding: Binding) -> None:
        if binding.exchange not in self.exchanges:
            raise refused(404, f"NOT_FOUND - no exchange '{binding.exchange}' in vhost '/'")
        target = self.queue(queue)
        if (binding.exchange, binding) not in target.bindings:
            target.bindings.append((binding.exchange, binding))

    def queue(self, name: str) -> MemoryQueue:
        found = self.queues.get(name)
        if found is None:
            raise refused(404, f"NOT_FOUND - no queue '{name}' in vhost '/'")
        return found

    def route(self, exchange: str, routing_key: str, message: Stored) -> int:
        """Put a copy of the message in every queue the exchange routes it to; how many."""
        targets = self._targets(exchange, routing_key, message.properties.get("headers") or {})
        alternate = self.exchanges[exchange].arguments.get("alternate-exchange") if exchange else None
        if not targets and isinstance(alternate, str) and alternate in self.exchanges and alternate != exchange:
            return self.route(alternate, routing_key, message)
        for queue in targets:
            queue.ready.append(_copy(message))
        if not targets:
            self.unroutable.append(message)
        self.wake()
        return len(targets)

    def dead_letter(self, queue: MemoryQueue, message: Stored) -> None:
        """A message rejected or nacked without requeue: to the queue's dead-letter exchange, if any."""
        arguments = queue.spec.arguments
        exchange = arguments.get("x-dead-letter-exchange")
        if isinstance(exchange, str) and exchange in self.exchanges:
            key = arguments.get("x-dead-letter-routing-key", message.routing_key)
            self.route(exchange, str(key), Stored(message.body, message.properties, exchange, str(key)))

    def later(self, callback: Callable[..., None], *arguments: Any) -> None:
        """Run a client's callback in the hub, on its next turn, as a client library does."""
        gevent.get_hub().loop.run_callback(callback, *arguments)

    def wake(self) -> None:
        """Deliver what can be delivered, on the hub's next turn (as a client library's callbacks run)."""
        if not self._dispatching:
            self._dispatching = True
            gevent.get_hub().loop.run_callback(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatching = False
        for queue in list(self.queues.values()):
            while queue.ready and self._deliver_one(queue):
                pass

    def _deliver_one(self, queue: MemoryQueue) -> bool:
        for _ in range(len(queue.consumers)):
            consumer = queue.consumers.pop(0)
            queue.consumers.append(consumer)  # round robin
            if consumer.channel.has_room():
                consumer.deliver(consumer, queue, queue.ready.popleft())
                return True
        return False

    def _targets(self, exchange: str, routing_key: str, headers: Mapping[str, Any]) -> list[MemoryQueue]:
        if exchange == "":
            found = self.queues.get(routing_key)
            return [found] if found is not None else []
        kind = self.exchanges[exchange].type
        return [
            queue
            for queue in self.queues.values()
            if any(
                source == exchange and _matches(kind, binding, routing_key, headers)
                for source, binding in queue.bindings
            )
        ]


def _matches(kind: str, binding: Binding, routing_key: str, headers: Mapping[str, Any]) -> bool:
    if kind == "fanout":
        return True
    if kind == "topic":
        return topic_matches(binding.routing_key.split("."), routing_key.split("."))
    if kind == "headers":
        wanted = {key: value for key, value in binding.arguments.items() if not key.startswith("x-")}
        hits = [key in headers and headers[key] == value for key, value in wanted.items()]
        return any(hits) if binding.arguments.get("x-match") == "any" else all(hits)
    return binding.routing_key == routing_key


def topic_matches(pattern: list[str], words: list[str]) -> bool:
    """A topic binding key against a routing key, word by word: `*` is one word, `#` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(topic_matches(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and topic_matches(rest, words[1:])


def refused(code: int, text: str) -> DeclarationRefused:
    return DeclarationRefused(f"{code} {text}", reply_code=code, reply_text=text)


def _exchange(name: str, kind: str) -> Exchange:
    return Exchange(name=name, type=kind, durable=True, auto_delete=False, internal=False, passive=False, arguments={})


def _copy(message: Stored) -> Stored:
    return Stored(
        message.body,
        copy_properties(message.properties),
        message.exchange,
        message.routing_key,
        undecodable=message.undecodable,
    )


def copy_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A copy that shares no mutable headers with the original: each queue holds its own."""
    copy = dict(properties)
    if isinstance(copy.get("headers"), dict):
        copy["headers"] = dict(copy["headers"])
    return copy


def _exchange_settings(exchange: Exchange) -> tuple[object, ...]:
    """What a redeclaration must repeat exactly."""
    return exchange.type, exchange.durable, exchange.auto_delete, exchange.internal, dict(exchange.arguments)


def _queue_settings(queue: Queue) -> tuple[object, ...]:
    return queue.durable, queue.exclusive, queue.auto_delete, dict(queue.arguments)
