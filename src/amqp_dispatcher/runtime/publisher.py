"""Publishing from consumers: its own connection, opened on first use, with publisher confirms.

Owns the publishing connection, a small pool of confirm-mode channels, and the count of
unroutable messages (logged, rate-limited, in the consumer's name). RabbitMQ throttles
publishing connections with connection.blocked; keeping publishers off the consuming
connection means such a block never stalls deliveries or heartbeats there. Each channel carries
one message at a time, so a returned (unroutable) message can never be mistaken for another.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from time import perf_counter

import gevent.lock

from .errors import BrokerError, PublishError, PublishRefused, PublishReturned, PublishTimeout, PublishUnencodable
from .logs import PUBLISHER, PrefixedLog, get_logger
from .message import encode_properties
from .metrics import ServiceMetrics
from .settings import ConnectionSettings
from .transport import Channel, Connection, Transport

log = get_logger(PUBLISHER)

# How long a publish may wait while the broker blocks publishers, before the connection is dropped.
BLOCKED_TIMEOUT = 60.0
# Channels of the publishing connection, at most (RabbitMQ allows 2047 by default).
MAX_CHANNELS = 256
# Unroutable publishes are logged at most this often per exchange and routing key, with how
# many there were meanwhile: a consumer that publishes to an unbound key on every message must
# not flood the log. At most _UNROUTABLE_KEYS keys are remembered.
UNROUTABLE_LOG_EVERY = 60.0
_UNROUTABLE_KEYS = 1000
_NOT_COUNTED = contextlib.nullcontext()  # metrics off: reusable, nothing to count


class Publisher:
    def __init__(self, settings: ConnectionSettings, name: str, transport: Transport) -> None:
        self._settings = settings
        self._transport = transport
        self._name = f"{name} (publisher)"
        self._connection: Connection | None = None
        self._idle: list[Channel] = []
        self._opening = gevent.lock.Semaphore()
        self._slots = gevent.lock.BoundedSemaphore(MAX_CHANNELS)
        self._closed = False
        self.unroutable = 0  # messages the broker returned because no queue received them
        # (exchange, routing key) -> unroutable since the last line about it, and that line's time
        self._unroutable_seen: dict[tuple[str, str], tuple[int, float]] = {}
        self.is_blocked = False  # the broker has sent connection.blocked to the publishing connection
        self.metrics: ServiceMetrics | None = None  # set by the runner when the HTTP endpoint is on

    @property
    def is_connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.is_open

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "not connected"
        return f"<Publisher {state}, {len(self._idle)} idle channels>"

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: dict[str, object],
        *,
        mandatory: bool,
        timeout: float,
    ) -> None:
        counted = self._counted() if self.metrics is not None else _NOT_COUNTED
        with counted, self._slots:  # more concurrent publishes than channels wait for one
            channel = self._checkout()
            try:
                channel.publish(
                    exchange, routing_key, body, encode_properties(properties), mandatory=mandatory, timeout=timeout
                )
            except BrokerError as exc:  # the channel is gone; say what happened in the publisher's terms
                raise PublishError(f"publishing to {exchange!r} failed: {exc}") from exc
            except (PublishReturned, PublishRefused, PublishUnencodable):
                self._idle.append(channel)  # answered, or nothing sent: the channel holds nothing in flight
                raise
            except BaseException:
                channel.close()  # a late confirm could arrive on it and answer the next publish
                raise
            self._idle.append(channel)

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """Counts the publish by outcome, with its duration (waiting for a free channel included)."""
        assert self.metrics is not None
        started, outcome = perf_counter(), "failed"
        try:
            yield
            outcome = "confirmed"
        except PublishReturned:
            outcome = "returned"
            raise
        except PublishRefused:
            outcome = "nacked"
            raise
        except PublishTimeout:
            outcome = "timeout"
            raise
        finally:
            self.metrics.publishes[outcome] += 1
            self.metrics.publish_duration.observe(perf_counter() - started)

    def note_unroutable(self, exchange: str, routing_key: str, returned: PublishReturned, log: PrefixedLog) -> None:
        """Count a returned message, and say so in the consumer's log, at most once a minute per
        exchange and routing key, with how many there were meanwhile."""
        self.unroutable += 1
        key = (exchange, routing_key)
        since, at = self._unroutable_seen.get(key, (0, -UNROUTABLE_LOG_EVERY))
        now = time.monotonic()
        if now - at < UNROUTABLE_LOG_EVERY:
            self._unroutable_seen[key] = (since + 1, at)
            return
        if len(self._unroutable_seen) >= _UNROUTABLE_KEYS:
            self._unroutable_seen.clear()  # bounded: keys can be as many as the messages
        self._unroutable_seen[key] = (0, now)
        log.warning(
            "a message published to exchange %r with routing key %r reached no queue (%d %s), so it is dropped, "
            "as the original amqp-dispatcher did%s; %d unroutable in all",
            exchange,
            routing_key,
            returned.reply_code,
            returned.reply_text,
            f" ({since} more to the same key since the last line)" if since else "",
            self.unroutable,
        )

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        self._idle.clear()
        if connection is not None:
            connection.close(timeout)

    def _checkout(self) -> Channel:
        while self._idle:
            channel = self._idle.pop()
            if channel.is_open:
                return channel
        connection = self._connect()
        try:
            channel = connection.channel()
            channel.enable_confirms()
        except BrokerError as exc:
            raise PublishError(f"cannot open a publishing channel: {exc}") from exc
        return channel

    def _connect(self) -> Connection:
        with self._opening:  # concurrent first publishes open one connection between them
            if self._closed:
                raise PublishError("the service is stopping; nothing more can be published")
            if self._connection is not None and self._connection.is_open:
                return self._connection
            self._idle.clear()
            try:
                self._connection = self._transport.connect(
                    self._settings, name=self._name, blocked_timeout=BLOCKED_TIMEOUT
                )
            except BrokerError as exc:
                raise PublishError(f"cannot open the publishing connection: {exc}") from exc
            self._connection.add_close_callback(self._lost)
            self._connection.add_blocked_callback(self._blocked)
            log.info("publishing connection open to %s", self._connection.endpoint)
            return self._connection

    def _blocked(self, blocked: bool) -> None:
        self.is_blocked = blocked

    def _lost(self, reason: BrokerError) -> None:
        self._idle.clear()
        self.is_blocked = False
        if not self._closed:
            log.warning("publishing connection lost (%s); the next publish reconnects", reason)
