"""The connection supervisor: the consuming connection, from first connect to last close.

Owns connecting (hosts in random order; at start, retrying an unreachable broker with backoff
for startup_timeout), declaring the topology, attaching every pool, and, when the connection
is lost, reconnecting with exponential backoff and full jitter so that a fleet does not
reconnect in lockstep. Lets Fatal errors out to the runner. Knows nothing of signals or of
what the pools do with their messages.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Sequence

import gevent
import gevent.event

from . import topology
from .errors import BrokerError, BrokerUnreachable, DeclarationRefused, Fatal, Recoverable
from .logs import CONNECTION, get_logger
from .metrics import ServiceMetrics
from .pool import ConsumerPool, doubling
from .settings import ConnectionSettings
from .spec import LiveService
from .transport import Connection, Transport

log = get_logger(CONNECTION)

RECONNECT_BASE = 0.5
RECONNECT_CAP = 30.0


def full_jitter(attempt: int) -> float:
    """A delay drawn uniformly below an exponentially growing bound, capped for any attempt count.

    After the start, a broker that stays away is retried without end, every RECONNECT_CAP
    seconds at most: what supervisors and orchestrators expect of a service that has started.
    """
    return random.uniform(0, doubling(RECONNECT_BASE, attempt, RECONNECT_CAP))


class ConnectionSupervisor:
    def __init__(
        self,
        service: LiveService,
        settings: ConnectionSettings,
        pools: Sequence[ConsumerPool],
        name: str,
        transport: Transport,
    ) -> None:
        self.service = service
        self.transport = transport
        self.settings = settings
        self.pools = pools
        self.name = name
        self.ready = gevent.event.Event()
        self.failure: gevent.event.AsyncResult[Exception] = gevent.event.AsyncResult()
        self._connection: Connection | None = None
        self._stopped = gevent.event.Event()
        self.metrics: ServiceMetrics | None = None  # set by the runner when the HTTP endpoint is on
        for pool in pools:
            pool.on_fatal = self.failure.set
            pool.redeclare = functools.partial(topology.declare_on, service=service)

    def __repr__(self) -> str:
        connection = self._connection
        state = f"connected to {connection.endpoint}" if connection and connection.is_open else "not connected"
        return f"<ConnectionSupervisor {self.settings.describe()} {state}>"

    @property
    def is_connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.is_open

    def run(self) -> None:
        """Connect and stay connected until stopped; a Fatal error, or giving up at start, ends
        it with the error in `failure`."""
        try:
            self._run()
        except BrokerError as error:
            self.failure.set(error)
        except Exception as bug:  # last resort: a bug here must end the service, not leave it idle
            log.exception("the connection supervisor failed")
            self.failure.set(bug)

    def _run(self) -> None:
        deadline = time.monotonic() + self.service.startup_timeout
        attempt = 0
        while not self._stopped.is_set():
            try:
                connection = self._connect_and_set_up()
            except Recoverable as error:
                attempt += 1
                if not self.ready.is_set() and time.monotonic() >= deadline:
                    raise BrokerUnreachable(
                        f"gave up after {self.service.startup_timeout:g} s (startup_timeout): {error}"
                    ) from error
                delay = full_jitter(attempt)
                log.warning("%s; retrying in %.1f s (attempt %d)", error, delay, attempt + 1)
                self._stopped.wait(delay)
                continue
            attempt = 0
            reason = connection.wait_closed()
            if self._stopped.is_set():
                return
            for pool in self.pools:
                pool.detach()
            if isinstance(reason, Fatal):
                log.warning("lost the connection to %s (%s)", connection.endpoint, reason)
                raise reason
            # Even the first try waits a random moment: every service of a fleet on a node that
            # went away loses its connection at the same instant, and must not return in lockstep.
            delay = full_jitter(0)
            log.warning("lost the connection to %s (%s); reconnecting in %.2f s", connection.endpoint, reason, delay)
            if self._stopped.wait(delay):
                return

    def stop(self) -> None:
        """No more reconnecting; the connection stays open for the pools to finish on it."""
        self._stopped.set()

    def close(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close(timeout)

    def _connect_and_set_up(self) -> Connection:
        connection = self.transport.connect(self.settings, name=self.name)
        self._connection = connection
        log.info("connected to %s as %r", connection.endpoint, self.name)
        try:
            topology.declare(connection, self.service)
            self._attach_pools(connection)
        except BrokerError:
            for pool in self.pools:
                pool.detach()
            connection.close(timeout=5.0)
            raise
        if self.ready.is_set() and self.metrics is not None:
            self.metrics.reconnects += 1
        if not self.ready.is_set():
            instances = sum(pool.entry.consumer_count for pool in self.pools)
            log.info("ready: %d consumer entries with %d instances", len(self.pools), instances)
            self.ready.set()
        else:
            log.info("consuming again on %s", connection.endpoint)
        return connection

    def _attach_pools(self, connection: Connection) -> None:
        try:
            for pool in self.pools:
                pool.attach(connection)
        except DeclarationRefused as refusal:  # consuming from a queue that does not exist
            advice = "it does not exist: declare it under queues in the config, or create it before the service starts"
            raise topology.explained(refusal, advice) from refusal
