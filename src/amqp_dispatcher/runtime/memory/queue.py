"""One queue of the in-memory broker: its order, expiry, length limits, delivery limit and consumers.

Owns what RabbitMQ 3.10 does inside a queue, as observed on 3.10.8:

- Arrival: a message goes straight to a consumer with room if nothing is waiting (so a TTL of
  0 is delivered only then), otherwise to the tail.
- TTL: the lower of `x-message-ttl` and the message's `expiration`, from its arrival; only the
  head expires (a short-lived message behind a longer-lived one waits until it is the head),
  on a timer of the broker's clock; an expired message is never delivered; unacknowledged
  messages never expire, and one that comes back keeps its expiry. Quorum queues alike.
- Returns: a classic queue puts a returned message back in its original place and marks it
  redelivered; a quorum queue puts it at the tail, counts it (x-delivery-count, added to every
  redelivery from a consumer and to every basic.get, 0 included; redelivered when the count is
  above 0) and past `x-delivery-limit` dead-letters it with reason delivery_limit. A channel
  that closes returns what it held, in delivery order.
- Length: `x-max-length` and `x-max-length-bytes` (bodies) count ready messages. drop-head drops
  the head (dead-lettered with reason maxlen) on arrival and on return; reject-publish refuses
  an arrival that would go over (even one a consumer could take at once), reject-publish-dlx
  also dead-letters it. A quorum queue with reject-publish takes the publish that goes over,
  refuses from then on, and takes again at 80% of the limit.
- Delivery: round robin over the consumers whose channel has room in its prefetch window.

Where versions differ, or this model cannot follow: 3.10 tells each publisher that a quorum
queue is full asynchronously, so a real publisher may get one more through (here all are
refused at once); 3.10's quorum queues accept reject-publish-dlx and treat it as drop-head
(they log a warning); quorum queues have no delivery limit unless declared in 3.10 (4.0 made 20
the default); later versions reworked quorum queues' returns, so where a returned message goes
and what counts as a delivery may differ there. A queue's `x-expires`, priorities and single
active consumer are not modelled.

Knows nothing of connections; a channel takes each delivery through `deliver`.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .arguments import rules_of
from .deadletter import dead_letter
from .encoding import expiration_ms

if TYPE_CHECKING:
    from ..clock import Timer
    from ..spec import Binding, Queue
    from .broker import MemoryBroker
    from .records import Stored

# A quorum queue that refused a publish takes them again at this fraction of its limit.
_SOFT_LIMIT = 0.8


class Taker(Protocol):
    """A channel, as a queue sees it: room in its prefetch window, a delivery to hand over, a cancel."""

    def has_room(self) -> bool: ...

    def cancelled_by_broker(self, consumer_tag: str) -> None: ...

    def deliver(self, consumer: Consumer, queue: MemoryQueue, message: Stored) -> None: ...


@dataclass(slots=True, eq=False)
class Consumer:
    tag: str
    channel: Taker


class MemoryQueue:
    """A queue, its ready messages (head first) and its consumers."""

    def __init__(self, spec: Queue, broker: MemoryBroker) -> None:
        self.spec = spec
        self.rules = rules_of(spec)
        self.broker = broker
        self.ready: deque[Stored] = deque()
        self.consumers: list[Consumer] = []
        self.bindings: list[tuple[str, Binding]] = []  # (exchange, binding)
        self.refusing = False  # a quorum queue with reject-publish, over its limit
        self.deleted = False
        self._arrivals = itertools.count(1)
        self._timer: Timer | None = None
        self._timer_at: float | None = None

    def __repr__(self) -> str:
        kind = "quorum" if self.rules.quorum else "classic"
        return f"<MemoryQueue {self.name!r} {kind}, {len(self.ready)} ready, {len(self.consumers)} consumers>"

    @property
    def name(self) -> str:
        return self.spec.name

    # Arrivals and returns.

    def enqueue(self, message: Stored) -> bool:
        """A message routed here: delivered, or waiting; False if the queue refused it."""
        if self._refuses(message):
            if self.rules.overflow == "reject-publish-dlx":
                dead_letter(self.broker, self, message, "maxlen")
            else:
                detail = "refused by x-overflow reject-publish: the queue is full (a confirming publisher gets a nack)"
                self.broker.drop(message, self.name, "maxlen", detail)
            return False
        message.sequence = next(self._arrivals)
        message.expires_at = self._expiry(message)
        consumer = None if self.ready else self._next_consumer()
        if consumer is not None:
            consumer.channel.deliver(consumer, self, message)
        else:
            self.ready.append(message)
            self._drop_over_limit()
        self.run()
        return True

    def give_back(self, message: Stored) -> None:
        """A message a client returned: nacked or rejected with requeue, or its channel closed."""
        if self._gone(message):
            return
        if self.rules.quorum:
            message.delivery_count += 1
            limit = self.rules.delivery_limit
            if limit is not None and message.delivery_count > limit:
                dead_letter(self.broker, self, message, "delivery_limit")
                self.tidy()
                return
            self.ready.append(message)
        else:
            self._put_back_in_place(message)
        message.redelivered = True
        self._drop_over_limit()
        self.tidy()

    def reject(self, message: Stored) -> None:
        """A message a client rejected or nacked without requeue."""
        if not self._gone(message):
            dead_letter(self.broker, self, message, "rejected")
            self.tidy()

    def take(self) -> Stored | None:
        """The head, for basic.get; None when nothing (unexpired) is waiting."""
        self._expire_head()
        message = self.ready.popleft() if self.ready else None
        self.run()
        return message

    def delete(self) -> None:
        self.deleted = True
        self._cancel_timer()
        while self.ready:
            self.broker.drop(self.ready.popleft(), self.name, "deleted", "its queue was deleted")

    def headers_for(self, message: Stored, *, got: bool) -> dict[str, Any] | None:
        """The headers a delivery carries: a quorum queue adds x-delivery-count (to basic.get's always)."""
        headers = message.properties.get("headers")
        if not self.rules.quorum or not (got or message.delivery_count):
            return None
        return {**(headers if isinstance(headers, dict) else {}), "x-delivery-count": message.delivery_count}

    # What moves by itself.

    def run(self) -> None:
        """Expire what is due at the head, give consumers what they have room for, set the timer."""
        while True:
            self._expire_head()
            consumer = self._next_consumer() if self.ready else None
            if consumer is None:
                break
            consumer.channel.deliver(consumer, self, self.ready.popleft())
        self.tidy()

    def tidy(self) -> None:
        """Expire what is due at the head and set the timer; deliveries wait for `run`."""
        self._expire_head()
        self._update_refusing()
        self._schedule_expiry()

    def _expire_head(self) -> None:
        now = self.broker.clock.monotonic()
        while self.ready and (expires := self.ready[0].expires_at) is not None and now >= expires:
            dead_letter(self.broker, self, self.ready.popleft(), "expired")

    def _schedule_expiry(self) -> None:
        due = self.ready[0].expires_at if self.ready and not self.deleted else None
        if due == self._timer_at:
            return
        self._cancel_timer()
        if due is not None:
            clock = self.broker.clock
            self._timer_at = due
            self._timer = clock.call_later(max(due - clock.monotonic(), 0.0), self._expiry_due)

    def _expiry_due(self) -> None:
        self._timer, self._timer_at = None, None
        self.run()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None

    # The rules.

    def _expiry(self, message: Stored) -> float | None:
        ttls = [ttl for ttl in (self.rules.message_ttl, expiration_ms(message.properties)) if ttl is not None]
        return self.broker.clock.monotonic() + min(ttls) / 1000 if ttls else None

    def _refuses(self, message: Stored) -> bool:
        rules = self.rules
        if not rules.has_limit or rules.overflow == "drop-head":
            return False
        if rules.quorum:
            return self.refusing
        return _over(rules.max_length, len(self.ready) + 1) or _over(
            rules.max_bytes, self._ready_bytes(len(message.body))
        )

    def _drop_over_limit(self) -> None:
        if self.rules.overflow != "drop-head":
            return
        while self.ready and self._is_over_limit():
            dead_letter(self.broker, self, self.ready.popleft(), "maxlen")

    def _is_over_limit(self) -> bool:
        rules = self.rules
        return _over(rules.max_length, len(self.ready)) or _over(rules.max_bytes, self._ready_bytes())

    def _update_refusing(self) -> None:
        rules = self.rules
        if not (rules.quorum and rules.overflow == "reject-publish" and rules.has_limit):
            return
        if self._is_over_limit():
            self.refusing = True
        elif self.refusing:  # takes publishes again once at or below the soft limit
            self.refusing = _over(_soft(rules.max_length), len(self.ready)) or _over(
                _soft(rules.max_bytes), self._ready_bytes()
            )

    def _ready_bytes(self, extra: int = 0) -> int:
        return sum(len(message.body) for message in self.ready) + extra

    def _put_back_in_place(self, message: Stored) -> None:
        for index, waiting in enumerate(self.ready):
            if waiting.sequence > message.sequence:
                self.ready.insert(index, message)
                return
        self.ready.append(message)

    def _next_consumer(self) -> Consumer | None:
        for _ in range(len(self.consumers)):
            consumer = self.consumers.pop(0)
            self.consumers.append(consumer)  # round robin
            if consumer.channel.has_room():
                return consumer
        return None

    def _gone(self, message: Stored) -> bool:
        """A message that comes back to a deleted queue goes nowhere: recorded as dropped."""
        if self.deleted:
            self.broker.drop(message, self.name, "deleted", "its queue was deleted while a client held it")
        return self.deleted


def _over(limit: int | None, amount: int) -> bool:
    return limit is not None and amount > limit


def _soft(limit: int | None) -> int | None:
    return None if limit is None else int(limit * _SOFT_LIMIT)
