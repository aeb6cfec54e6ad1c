"""The in-memory broker's connections and channels, as the transport seam defines them.

Owns what one client sees: a connection's channels, a channel's delivery tags (counted from 1
on each channel, as in AMQP), prefetch window, consumers, unacknowledged deliveries and
publisher confirms (a nack when a full queue refuses the message, a return for a mandatory
one no queue receives); what closing returns to the queues (in delivery order); and the
delivery, close, cancel and blocked callbacks, run in the hub, with the exceptions and
wording of the pika transport. A delivery already on its way to a consumer this client
cancelled is rejected back to its queue, as pika does. A publish that no confirm answers
waits its timeout on the broker's clock. A closing connection is no longer open when its
channels' callbacks run, as with pika. Knows nothing of pools or policies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event

from ..errors import (
    BrokerError,
    ConnectionLost,
    DeclarationRefused,
    PublishRefused,
    PublishReturned,
    PublishTimeout,
)
from ..message import Message
from ..spec import Binding, Exchange, Queue
from ..transport import BlockedCallback, CloseCallback, Delivery, DeliveryCallback, Settlement, report_blocked
from .broker import MemoryBroker, refused
from .encoding import carried, check_encodable, expiration_ms
from .queue import Consumer, MemoryQueue
from .records import Settled, Stored, copy_properties


class MemoryConnection:
    """A client's connection to a MemoryBroker."""

    def __init__(self, broker: MemoryBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self.endpoint = "memory"
        self.channels: list[MemoryChannel] = []
        self._numbers = itertools.count(1)
        self._closing = False
        self._closed: gevent.event.AsyncResult[BrokerError | None] = gevent.event.AsyncResult()
        self._on_close: list[CloseCallback] = []
        self._on_blocked: list[BlockedCallback] = []
        broker.connections.append(self)

    def __repr__(self) -> str:
        return f"<MemoryConnection {self.name!r} {'open' if self.is_open else 'closed'}, {len(self.channels)} channels>"

    @property
    def is_open(self) -> bool:
        return not self._closing

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def add_blocked_callback(self, callback: BlockedCallback) -> None:
        self._on_blocked.append(callback)

    def channel(self) -> MemoryChannel:
        if not self.is_open:
            raise ConnectionLost("opening a channel: the connection closed")
        channel = MemoryChannel(self, next(self._numbers))
        self.channels.append(channel)
        return channel

    def wait_closed(self, timeout: float | None = None) -> BrokerError | None:
        """Block until closed (`timeout` is on the broker's clock); why, or None on timeout or our close."""
        if timeout is not None and not self._closed.ready():
            expired = gevent.event.Event()
            timer = self.broker.clock.call_later(timeout, expired.set)
            try:
                gevent.wait([self._closed, expired], count=1)
            finally:
                timer.cancel()
            if not self._closed.ready():
                return None
        reason: BrokerError | None = self._closed.get()
        return reason

    def close(self, timeout: float = 10.0) -> None:
        self._end(None)

    def close_by_broker(self, reason: BrokerError) -> None:
        """The broker ends the connection (a restart, a forced close, a missed heartbeat)."""
        self._end(reason)

    def blocked(self, blocked: bool) -> None:
        """connection.blocked (True) or connection.unblocked (False) from the broker."""
        self.broker.later(report_blocked, self.endpoint, blocked)
        for callback in self._on_blocked:
            self.broker.later(callback, blocked)

    def _end(self, reason: BrokerError | None) -> None:
        if self._closing:
            return
        self._closing = True  # first: the channels' close callbacks see a connection that is going
        for channel in list(self.channels):
            channel.end(reason or ConnectionLost("the connection closed"))
        if self in self.broker.connections:
            self.broker.connections.remove(self)
        self._closed.set(reason)
        for callback in self._on_close:
            self.broker.later(callback, reason or ConnectionLost("closed by this service"))


@dataclass(frozen=True, slots=True)
class _Subscription:
    queue: MemoryQueue
    on_delivery: DeliveryCallback
    on_cancel: Callable[[], None]


class MemoryChannel:
    """A channel of a MemoryConnection."""

    def __init__(self, connection: MemoryConnection, number: int) -> None:
        self.connection = connection
        self.broker = connection.broker
        self._number = number
        self.prefetch = 0  # 0: no limit, as in AMQP
        self.unacked: dict[int, tuple[MemoryQueue, Stored]] = {}
        self.consumers: dict[str, _Subscription] = {}
        self._cancelled: set[str] = set()  # consumers this client cancelled
        self._tags = itertools.count(1)
        self._consumer_tags = itertools.count(1)
        self._open = True
        self._confirming = False
        self._on_close: list[CloseCallback] = []

    def __repr__(self) -> str:
        return f"<MemoryChannel {self._number} {'open' if self._open else 'closed'}, {len(self.unacked)} unacked>"

    @property
    def number(self) -> int:
        return self._number

    @property
    def is_open(self) -> bool:
        return self._open

    def add_close_callback(self, callback: CloseCallback) -> None:
        self._on_close.append(callback)

    def has_room(self) -> bool:
        return self._open and (self.prefetch == 0 or len(self.unacked) < self.prefetch)

    def qos(self, prefetch_count: int) -> None:
        self._check_open("setting the prefetch")
        self.prefetch = prefetch_count
        self.broker.wake()

    def consume(self, queue: str, on_delivery: DeliveryCallback, *, on_cancel: Callable[[], None]) -> str:
        target: MemoryQueue = self._refusable(lambda: self.broker.queue(queue), f"consuming from {queue!r}")
        tag = f"ctag{self._number}.{next(self._consumer_tags)}"
        self.consumers[tag] = _Subscription(target, on_delivery, on_cancel)
        target.consumers.append(Consumer(tag, self))
        self.broker.wake()
        return tag

    def cancel(self, consumer_tag: str, timeout: float = 5.0) -> None:
        subscription = self.consumers.pop(consumer_tag, None)
        if subscription is not None:
            self._cancelled.add(consumer_tag)
            subscription.queue.consumers[:] = [c for c in subscription.queue.consumers if c.tag != consumer_tag]

    def cancelled_by_broker(self, consumer_tag: str) -> None:
        """basic.cancel from the broker (the queue was deleted, or a node went away)."""
        subscription = self.consumers.pop(consumer_tag, None)
        if subscription is not None:
            subscription.queue.consumers[:] = [c for c in subscription.queue.consumers if c.tag != consumer_tag]
            self.broker.later(subscription.on_cancel)

    def deliver(self, consumer: Consumer, queue: MemoryQueue, message: Stored) -> None:
        """The queue gives a consumer of this channel a message: unacknowledged now, handed over in the hub."""
        self.broker.later(self._hand_over, consumer.tag, self._delivered(queue, message, consumer.tag))

    def settle(self, delivery_tag: int, how: Settlement, *, requeue: bool = False) -> bool:
        if not self._open:
            return False
        held = self.unacked.pop(delivery_tag, None)
        if held is None:  # a second answer, or a tag of another channel: RabbitMQ closes the channel
            text = f"PRECONDITION_FAILED - unknown delivery tag {delivery_tag}"
            self.broker.protocol_errors.append(f"channel {self._number}: {how} of delivery {delivery_tag}: {text}")
            self.end(refused(406, text))
            return True  # it was sent; the broker's answer is the channel's close
        queue, message = held
        self.broker.settled.append(Settled(message, how, requeue, queue.name))
        if how != "ack" and requeue:
            queue.give_back(message)
        elif how != "ack":
            queue.reject(message)
        self.broker.wake()
        return True

    def declare_exchange(self, exchange: Exchange) -> None:
        self._refusable(lambda: self.broker.declare_exchange(exchange), f"declaring exchange {exchange.name!r}")

    def declare_queue(self, queue: Queue) -> None:
        self._refusable(lambda: self.broker.declare_queue(queue), f"declaring queue {queue.name!r}")

    def bind(self, queue: str, binding: Binding) -> None:
        what = f"binding queue {queue!r} to exchange {binding.exchange!r}"
        self._refusable(lambda: self.broker.bind(queue, binding), what)

    def message_count(self, queue: str) -> int:
        found: MemoryQueue = self._refusable(lambda: self.broker.queue(queue), f"checking queue {queue!r}")
        return len(found.ready)

    def get(self, queue: str) -> Delivery | None:
        source: MemoryQueue = self._refusable(lambda: self.broker.queue(queue), f"reading from {queue!r}")
        message = source.take()
        return None if message is None else self._delivered(source, message, None)

    def enable_confirms(self) -> None:
        self._check_open("turning on publisher confirms")
        self._confirming = True

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Mapping[str, Any],
        *,
        mandatory: bool,
        timeout: float,
    ) -> None:
        what = f"publishing to {exchange!r}"
        self._check_open(what)
        check_encodable(exchange, routing_key, properties)
        kept = carried(properties)
        self._refusable(lambda: self._check_publishable(exchange, kept), what)
        if self.broker.silent:  # the broker never answers: nothing is routed, no confirm comes
            self.broker.clock.sleep(timeout)
            raise PublishTimeout.of(exchange, timeout)
        if self.broker.nacking:
            raise PublishRefused.of(exchange, routing_key)
        stored = Stored(bytes(body), kept, exchange, routing_key)
        routed = self.broker.route(exchange, routing_key, stored, mandatory=mandatory)
        if not self._confirming:  # sent, but no confirm will come
            self.broker.clock.sleep(timeout)
            raise PublishTimeout.of(exchange, timeout)
        if routed.refused:
            raise PublishRefused.of(exchange, routing_key)
        if routed.is_unroutable and mandatory:
            raise PublishReturned.of(exchange, routing_key, 312, "NO_ROUTE")

    def close(self) -> None:
        self.end(ConnectionLost("the channel was closed by this service"))

    def end(self, reason: BrokerError) -> None:
        """Close: consumers go, unacknowledged messages return to their queues in delivery order."""
        if not self._open:
            return
        self._open = False
        for tag in list(self.consumers):
            self.cancel(tag)
        held, self.unacked = list(self.unacked.values()), {}
        for queue, message in held:
            queue.give_back(message)
        if self in self.connection.channels:
            self.connection.channels.remove(self)
        self.broker.wake()
        for callback in self._on_close:
            self.broker.later(callback, reason)

    def _check_publishable(self, exchange: str, properties: Mapping[str, Any]) -> None:
        """What RabbitMQ closes a publisher's channel for, in its order: the exchange, then the expiration."""
        found = self.broker.exchanges.get(exchange)
        if found is None:
            raise refused(404, f"NOT_FOUND - no exchange '{exchange}' in vhost '/'")
        if found.internal:
            raise refused(403, f"ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in vhost '/'")
        expiration_ms(properties)

    def _hand_over(self, consumer_tag: str, delivery: Delivery) -> None:
        if not self._open:
            return  # closing returned it to its queue
        subscription = self.consumers.get(consumer_tag)
        if subscription is not None:
            subscription.on_delivery(delivery)
        elif consumer_tag in self._cancelled and delivery.tag in self.unacked:
            self.settle(delivery.tag, "reject", requeue=True)  # pika's answer to a cancelled consumer's delivery

    def _delivered(self, queue: MemoryQueue, message: Stored, consumer_tag: str | None) -> Delivery:
        tag = next(self._tags)
        self.unacked[tag] = (queue, message)
        info = {
            "exchange": message.exchange,
            "routing_key": message.routing_key,
            "delivery_tag": tag,
            "redelivered": message.redelivered,
            "consumer_tag": consumer_tag,
        }
        properties = copy_properties(message.properties)
        headers = queue.headers_for(message, got=consumer_tag is None)
        if headers is not None:
            properties["headers"] = headers
        if message.undecodable is not None:
            properties.pop("headers", None)
        return Delivery(self, Message(message.body, properties, info), message.undecodable)

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise ConnectionLost(f"{what}: the channel is closed")

    def _refusable(self, call: Callable[[], Any], what: str) -> Any:
        """Run a broker operation; a refusal closes the channel, as RabbitMQ does."""
        self._check_open(what)
        try:
            return call()
        except DeclarationRefused as refusal:
            self.end(refusal)
            raise DeclarationRefused(
                f"{what}: {refusal}", reply_code=refusal.reply_code, reply_text=refusal.reply_text
            ) from None
