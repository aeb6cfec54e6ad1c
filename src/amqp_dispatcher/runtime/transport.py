"""The transport seam: what the rest of the runtime needs from a connection and a channel.

Owns the interface (`Transport`, `Connection`, `Channel`), the `Delivery` that both sides
share, and the rules every implementation keeps, written once here so that a new transport
is measured against them:

- Calls block only the calling greenlet; callbacks (`on_delivery`, `on_cancel`, close and
  blocked callbacks) run in the hub and must not block.
- Failures are our exceptions (errors.py), never a library's: `Recoverable` when retrying can
  help, `Fatal` when it cannot (a refused declaration, credentials, TLS).
- `settle` on a channel that has closed sends nothing and returns False: the broker has
  already requeued the message, and its delivery tag means nothing on any other channel.
- Closing a channel or connection, from either side, calls its close callbacks once, with why.

Two implementations: `pika_transport` (RabbitMQ over pika, the default) and `memory` (an
in-memory broker for unit tests and the test kit). Knows no AMQP library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .logs import TRANSPORT, get_logger

if TYPE_CHECKING:
    from .errors import BrokerError
    from .message import Message, Undecodable
    from .settings import ConnectionSettings
    from .spec import Binding, Exchange, Queue

log = get_logger(TRANSPORT)

Settlement = Literal["ack", "nack", "reject"]
DeliveryCallback = Callable[["Delivery"], None]
CloseCallback = Callable[["BrokerError"], None]
BlockedCallback = Callable[[bool], None]  # True when the broker blocks publishing, False when it unblocks


def report_blocked(endpoint: str, blocked: bool) -> None:
    """The line every transport logs on connection.blocked and connection.unblocked."""
    if blocked:
        log.warning("the broker blocks publishing on %s", endpoint)
    else:
        log.info("the broker unblocked %s", endpoint)


class Delivery:
    """A message together with the channel it arrived on, which alone may settle it.

    `undecodable` is set when the transport could not decode the message's headers: then
    `message` holds the body and the properties that could be read, and never reaches a consumer.
    """

    __slots__ = ("channel", "message", "outcome", "settled", "tag", "undecodable")

    def __init__(self, channel: Channel, message: Message, undecodable: Undecodable | None = None) -> None:
        self.channel = channel
        self.message = message
        self.tag = message.delivery_tag
        self.undecodable = undecodable
        self.settled = False  # answered by this service (or its channel gone), whoever answered it
        self.outcome: str | None = None  # where it went, as metrics.OUTCOMES names it

    def ack(self) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "ack")

    def nack(self, *, requeue: bool) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "nack", requeue=requeue)

    def reject(self, *, requeue: bool) -> bool:
        self.settled = True
        return self.channel.settle(self.tag, "reject", requeue=requeue)


class Channel(Protocol):
    """An open channel. RPCs wait for their answer; settling never waits."""

    @property
    def number(self) -> int: ...

    @property
    def is_open(self) -> bool: ...

    def add_close_callback(self, callback: CloseCallback) -> None: ...

    def qos(self, prefetch_count: int) -> None: ...

    def consume(self, queue: str, on_delivery: DeliveryCallback, *, on_cancel: Callable[[], None]) -> str:
        """Start consuming; returns the consumer tag. `on_cancel` runs if the broker cancels."""
        ...

    def cancel(self, consumer_tag: str, timeout: float = 5.0) -> None:
        """Stop deliveries; never raises (a closed channel has no consumer left)."""
        ...

    def settle(self, delivery_tag: int, how: Settlement, *, requeue: bool = False) -> bool:
        """ack, nack or reject; False, sending nothing, if the channel has closed."""
        ...

    def declare_exchange(self, exchange: Exchange) -> None: ...

    def declare_queue(self, queue: Queue) -> None: ...

    def bind(self, queue: str, binding: Binding) -> None: ...

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue that must exist."""
        ...

    def get(self, queue: str) -> Delivery | None:
        """One message, unacknowledged (basic.get); None when the queue is empty."""
        ...

    def enable_confirms(self) -> None: ...

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
        """Publish one message and wait for its confirm (one message in flight per channel).

        Raises PublishRefused (nacked), PublishReturned (mandatory and unroutable),
        PublishTimeout, PublishUnencodable (nothing sent), or a BrokerError if the channel closed.
        """
        ...

    def close(self) -> None: ...


class Connection(Protocol):
    """An open connection; `endpoint` is the host:port it reached."""

    endpoint: str

    @property
    def is_open(self) -> bool: ...

    def add_close_callback(self, callback: CloseCallback) -> None: ...

    def add_blocked_callback(self, callback: BlockedCallback) -> None: ...

    def channel(self) -> Channel: ...

    def wait_closed(self, timeout: float | None = None) -> BrokerError | None:
        """Block until the connection closes; returns why (None if this side closed it)."""
        ...

    def close(self, timeout: float = 10.0) -> None:
        """Close and wait for the broker's answer; unacknowledged messages go back to their queues."""
        ...


class Transport(Protocol):
    """Opens connections: the one object a service is given to reach its broker."""

    def connect(self, settings: ConnectionSettings, *, name: str, blocked_timeout: float | None = None) -> Connection:
        """Connect to a host of `settings`; raises Recoverable or Fatal."""
        ...
