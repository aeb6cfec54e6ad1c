"""The in-memory broker: one vhost's exchanges and queues, publishing into them, and what a test does to it.

Owns the vhost's entities and the rules of declaring them (the default exchange and the
`amq.*` ones, declarations that must match what exists (406), passive checks (404)), taking a
published message to its queues (routing.py) with what comes back to a publisher (how many
queues took it, whether one refused it), the records a test reads (`settled`, `unroutable`,
`dropped`, `dead_lettered`, `protocol_errors`, `ready` and `unacked` per queue), and what a
test does to it: stop it, refuse connections, cancel consumers, delete queues, block, nack or
never confirm publishes. All time is the broker's clock (`REAL`, or a ManualClock a test moves).
Deliveries and every client callback run in the gevent hub, as a real client library's do;
`pending_callbacks` counts those not yet run.

What happens inside a queue (TTL, length limits, quorum delivery limits, requeue order) is
queue.py's, dead-lettering and x-death deadletter.py's. Modelled on RabbitMQ 3.10 and checked
against it (tests/integration/test_memory_fidelity.py). Not modelled: exclusive ownership and
auto-delete (both accepted and ignored), a queue's `x-expires`, policies and operator policies,
exchange-to-exchange bindings, CC/BCC, message and consumer priorities, lazy queues, streams (a
stream queue behaves as a classic one), single active consumer, quorum at-least-once
dead-lettering, flow control (blocking only sends connection.blocked), message size limits,
and vhosts (every refusal names vhost '/'). Knows nothing of pools, consumers' classes or
policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent

from ..clock import REAL, Clock
from ..errors import AccessRefused, BrokerUnreachable, ConnectionLost, DeclarationRefused
from ..message import Undecodable
from ..spec import Binding, Exchange, Queue
from .encoding import carried, expiration_ms
from .queue import Consumer, MemoryQueue
from .records import DeadLettered, Dropped, Settled, Stored, copy_message, copy_properties
from .routing import targets, topic_matches

if TYPE_CHECKING:
    from .channel import MemoryConnection

_PREDECLARED = {"": "direct", "amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic"}
_PREDECLARED |= {"amq.headers": "headers", "amq.match": "headers"}


@dataclass(frozen=True, slots=True)
class Routed:
    """What a publish came to: how many queues took the message, how many refused it."""

    accepted: int
    refused: int

    @property
    def is_unroutable(self) -> bool:
        return not self.accepted and not self.refused


class MemoryBroker:
    """One vhost in memory. Tests inspect it and break it; the runtime reaches it through
    `MemoryTransport`, exactly as it reaches RabbitMQ through pika."""

    def __init__(self, clock: Clock = REAL) -> None:
        self.clock = clock
        self.exchanges: dict[str, Exchange] = {name: _exchange(name, kind) for name, kind in _PREDECLARED.items()}
        self.queues: dict[str, MemoryQueue] = {}
        self.connections: list[MemoryConnection] = []
        self.refusing: BaseException | None = None  # connect raises this while set
        self.nacking = False  # publisher confirms arrive as nacks
        self.silent = False  # no publisher confirm arrives at all
        self.unroutable: list[Stored] = []  # what no queue received
        self.settled: list[Settled] = []  # every ack, nack and reject, in order
        self.dropped: list[Dropped] = []  # what left unacknowledged and reached no queue, and why
        self.dead_lettered: list[DeadLettered] = []  # every dead-lettering, in order
        self.protocol_errors: list[str] = []  # what clients did that RabbitMQ closes a channel for
        self.pending_callbacks = 0  # client callbacks (deliveries, closes...) scheduled, not yet run
        self._waking = False

    def __repr__(self) -> str:
        ready = sum(len(queue.ready) for queue in self.queues.values())
        unacked = sum(len(channel.unacked) for connection in self.connections for channel in connection.channels)
        return (
            f"<MemoryBroker {len(self.queues)} queues, {ready} ready, {unacked} unacked, "
            f"{len(self.dropped)} dropped, {len(self.connections)} connections>"
        )

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
        """Publish as another application would (no confirms); how many queues received the message.

        `undecodable` makes it a message whose headers the transport cannot decode, as pika
        salvages it: the consumer gets the body and the reason, never the headers. An unknown
        exchange (404) or an invalid expiration (406) raises DeclarationRefused, where RabbitMQ
        closes the publisher's channel."""
        if exchange not in self.exchanges:
            raise refused(404, f"NOT_FOUND - no exchange '{exchange}' in vhost '/'")
        kept = carried(properties or {})
        expiration_ms(kept)
        message = Stored(bytes(body), kept, exchange, routing_key, undecodable=undecodable)
        return self.route(exchange, routing_key, message).accepted

    def ready(self, queue: str) -> list[Stored]:
        """The messages waiting in a queue, head first."""
        return list(self.queues[queue].ready)

    def unacked(self, queue: str) -> list[Stored]:
        """The messages delivered from a queue and not yet answered: channel by channel, each in delivery order."""
        return [
            message
            for connection in self.connections
            for channel in connection.channels
            for source, message in channel.unacked.values()
            if source.name == queue
        ]

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
        """Delete a queue: its consumers are cancelled, what it holds is dropped (reason "deleted")."""
        self.cancel_consumers(name)
        self.queues.pop(name).delete()

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
        self.queues[queue.name] = MemoryQueue(queue, self)

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

    def route(self, exchange: str, routing_key: str, message: Stored, *, mandatory: bool = False) -> Routed:
        """Put a copy of the message in every queue the exchange routes it to (alternate exchanges
        included); a message no queue receives is recorded, as returned if `mandatory`."""
        found = self.targets(exchange, routing_key, message.headers)
        accepted = sum(queue.enqueue(copy_message(message)) for queue in found)
        if not found:
            self.unroutable.append(message)
            if mandatory:
                self.drop(message, None, "returned", "no queue is bound for it: returned to the mandatory publisher")
            else:
                self.drop(message, None, "unroutable", f"exchange {exchange!r} routed it to no queue")
        return Routed(accepted, len(found) - accepted)

    def targets(self, exchange: str, routing_key: str, headers: Mapping[str, Any]) -> list[MemoryQueue]:
        return targets(self.exchanges, self.queues, exchange, routing_key, headers)

    def drop(self, message: Stored, queue: str | None, reason: str, detail: str) -> None:
        self.dropped.append(Dropped(message, queue, reason, detail))

    def wake(self) -> None:
        """Give every consumer what it has room for, on the hub's next turn: after an answer, a
        qos or a new consumer, once whatever the client sent with it (a cancel) has arrived."""
        if not self._waking:
            self._waking = True
            self.later(self._dispatch)

    def _dispatch(self) -> None:
        self._waking = False
        for queue in list(self.queues.values()):
            queue.run()

    def later(self, callback: Callable[..., None], *arguments: Any) -> None:
        """Run a client's callback in the hub, on its next turn, as a client library does."""
        self.pending_callbacks += 1

        def run() -> None:
            self.pending_callbacks -= 1
            callback(*arguments)

        gevent.get_hub().loop.run_callback(run)


def refused(code: int, text: str) -> DeclarationRefused:
    return DeclarationRefused(f"{code} {text}", reply_code=code, reply_text=text)


def _exchange(name: str, kind: str) -> Exchange:
    return Exchange(name=name, type=kind, durable=True, auto_delete=False, internal=False, passive=False, arguments={})


def _exchange_settings(exchange: Exchange) -> tuple[object, ...]:
    """What a redeclaration must repeat exactly."""
    return exchange.type, exchange.durable, exchange.auto_delete, exchange.internal, dict(exchange.arguments)


def _queue_settings(queue: Queue) -> tuple[object, ...]:
    return queue.durable, queue.exclusive, queue.auto_delete, dict(queue.arguments)


__all__ = [
    "Consumer",
    "DeadLettered",
    "Dropped",
    "MemoryBroker",
    "MemoryQueue",
    "Routed",
    "Settled",
    "Stored",
    "copy_properties",
    "refused",
    "topic_matches",
]
