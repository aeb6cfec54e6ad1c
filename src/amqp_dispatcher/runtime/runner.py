"""The service runner: `python -m service` from start to exit status.

Owns the order of a service's life: logging, connection settings, the startup handler, the
pools and the supervisor, then waiting for a signal or a fatal error, and the shutdown order,
which consumers rely on:

1. stop reconnecting, cancel every consumer, and return prefetched but unstarted messages to
   their queues;
2. let in-flight handlers finish, up to shutdown_timeout (the connection stays open, so their
   acks and heartbeats keep flowing);
3. call shutdown(None) once on every instance;
4. close the publishing connection, then the consuming one.

With `processes` above 1, the runner reads the settings and hands over to the parent of
several workers (parent.py) before the startup handler; each worker is a runner of its own,
linked to the parent (worker.py). The exit status is one of errors.ExitStatus; an internal
error (a bug, logged with its traceback) ends the service with 4, so that a process never
stays alive consuming nothing.
The broker is reached through the transport it is given (pika's, unless a test gives another).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Sequence

import gevent
import gevent.event

from . import deadlines, processes, tracing, transports
from . import worker as workers
from .clock import REAL, Clock
from .endpoint import listen_address
from .errors import BrokerError, ConfigurationError, ExitStatus
from .logs import ROOT, configure_from_file, default_logging, get_logger, quiet_pika, use_format
from .monitoring import Monitoring
from .pool import ConsumerPool
from .publisher import Publisher
from .settings import ConnectionSettings, from_environment
from .signals import stop_signals
from .spec import Http, LiveService
from .supervisor import ConnectionSupervisor
from .transport import Transport
from .watchdog import HubWatchdog, default_threshold

log = get_logger(ROOT)


def run_service(
    service: LiveService,
    transport: Transport | None = None,
    *,
    generator: str | None = None,
    worker_command: Sequence[str] | None = None,
) -> int:
    """Run until stopped; returns the exit status.

    With `processes` above 1 (and not as a worker already), this process becomes the parent of
    that many workers, each started with `worker_command` (this same command); the startup
    handler then runs in each worker, not here."""
    try:
        use_format(os.environ)
        configure_from_file(os.environ)
    except ConfigurationError as error:
        with default_logging():
            log.error("%s", error)
        return ExitStatus.CONFIG
    quiet_pika()
    with default_logging():  # shown by default, yet free for the startup handler to configure
        try:
            settings = from_environment(os.environ, default_heartbeat=service.heartbeat)
            worker = workers.from_environment(os.environ)
            os.environ.pop(workers.VARIABLE, None)  # a program the consumers start is no worker of ours
            address = None if worker else listen_address(os.environ, service.http)
            count = 1 if worker else processes.wanted(service.processes, os.environ)
            transport = transport or transports.from_environment(os.environ)
            if count > 1 and worker_command is None:
                raise ConfigurationError(
                    f"{count} processes need the service started as python -m <package> (or amqp-dispatcher "
                    f"--config), the command each worker runs again: start it so, or set {processes.VARIABLE}=1"
                )
        except ConfigurationError as error:
            log.error("%s", error)
            return ExitStatus.CONFIG
        if count > 1 and worker_command is not None:
            from .parent import Parent

            return Parent(service, count, worker_command, http=address, generator=generator).run()
        if service.startup_handler is not None:
            try:
                service.startup_handler()
            except KeyboardInterrupt:  # SIGINT (Ctrl-C) before anything was consumed: a clean stop
                log.info("SIGINT received while the startup handler ran; stopped before consuming (exit status 0)")
                return ExitStatus.OK
            except Exception:  # the user's handler: report it with its traceback
                log.exception("the startup handler %s raised; stopping", _qualified(service.startup_handler))
                return ExitStatus.CONFIG
        tracer = tracing.configured()  # after the startup handler, which may configure OpenTelemetry
    runner = ServiceRunner(
        service,
        settings,
        transport,
        http=address,
        generator=generator,
        tracer=tracer,
        worker=worker,
    )
    return runner.run()


class ServiceRunner:
    def __init__(
        self,
        service: LiveService,
        settings: ConnectionSettings,
        transport: Transport,
        *,
        http: Http | None = None,
        generator: str | None = None,
        tracer: tracing.Tracer | None = None,
        worker: workers.WorkerIdentity | None = None,
        clock: Clock = REAL,
    ) -> None:
        self.service = service
        self.settings = settings
        self.name = f"{service.name} on {socket.gethostname()} pid {os.getpid()} config {service.config_sha256[:12]}"
        if worker is not None:
            self.name += f" {worker}"
        self.publisher = Publisher(settings, self.name, transport)
        raise_unroutable = service.on_unroutable == "raise"
        self.pools = [
            ConsumerPool(entry, self.publisher, raise_unroutable=raise_unroutable, clock=clock)
            for entry in service.consumers
        ]
        for pool in self.pools:
            pool.tracer = tracer
        self.supervisor = ConnectionSupervisor(service, settings, self.pools, self.name, transport)
        self.monitoring = (
            Monitoring(service, self.pools, self.supervisor, self.publisher, generator=generator)
            if http is not None or worker is not None
            else None
        )
        self.endpoint = self.monitoring.endpoint(http) if self.monitoring and http else None
        self.link = workers.ParentLink(worker, self.monitoring, self.stop) if self.monitoring and worker else None
        self._stop = gevent.event.Event()
        self._forced = gevent.event.Event()
        self._signals = 0

    def run(self) -> int:
        with stop_signals(self._on_signal):
            return self.serve()

    def serve(self) -> int:
        """Run until `stop` or a fatal error, without taking the process's signals (run does)."""
        log.info(
            "starting %s (amqp-dispatcher %s) against %s, heartbeat %d s",
            self.service.name,
            _version(),
            self.settings.describe(),
            self.settings.heartbeat,
        )
        threshold = self.service.blocking_threshold
        watchdog = HubWatchdog(default_threshold(self.settings.heartbeat) if threshold is None else threshold)
        if self.monitoring is not None:
            watchdog.metrics = self.monitoring.metrics
        if watchdog.threshold > 0:
            watchdog.start()
        try:
            try:  # first: a port in use ends the service before it connects
                if self.endpoint is not None:
                    self.endpoint.start()
                if self.link is not None:
                    self.link.start()
            except ConfigurationError as error:
                log.error("%s", error)
                return ExitStatus.CONFIG
            return self._serve()
        finally:
            if self.endpoint is not None:  # last: /readyz says 503 while the service drains
                self.endpoint.stop()
            if self.link is not None:  # the parent gets the counts this process ends with
                self.link.finish()
            watchdog.stop()

    def _serve(self) -> int:
        for pool in self.pools:
            pool.start()
        supervisor = gevent.spawn(self.supervisor.run)
        waiting: list[gevent.event.Event | gevent.event.AsyncResult[Exception] | gevent.Greenlet[[], None]]
        waiting = [self._stop, self.supervisor.failure, supervisor]
        gevent.wait(waiting, count=1)
        self.supervisor.stop()
        supervisor.kill()  # it may be connecting or backing off; an open connection stays open
        if self._stop.is_set():
            return self._drain()
        failure = self.supervisor.failure.value if self.supervisor.failure.ready() else None
        self._close_everything()
        if isinstance(failure, BrokerError):
            log.error("stopping: %s", failure)
            return ExitStatus.BROKER
        # The bug is logged above with its traceback; staying up would consume nothing.
        log.error("stopping after an internal error: %r (exit status %d)", failure, ExitStatus.INTERNAL)
        return ExitStatus.INTERNAL

    def stop(self, forced: bool = False) -> None:
        """Stop as a signal would, but once: drain, or, `forced`, stop at once (the parent's requests)."""
        if forced and not self._forced.is_set():
            log.warning("the parent process asks to stop now; unfinished messages go back to their queues")
            self._forced.set()
        if not self._stop.is_set():
            log.info("stopping: finishing in-flight messages (up to %g s)", self.service.shutdown_timeout)
            self._stop.set()

    def _on_signal(self, number: int) -> None:
        self._signals += 1
        name = signal.Signals(number).name
        if self._signals == 1:
            log.info("%s received: finishing in-flight messages (up to %g s)", name, self.service.shutdown_timeout)
            self._stop.set()
        else:
            log.warning("%s received again: stopping now; unfinished messages go back to their queues", name)
            self._forced.set()

    def _drain(self) -> int:
        for pool in self.pools:
            pool.stop()
        deadline = time.monotonic() + self.service.shutdown_timeout
        finished = all(pool.wait_idle(deadline - time.monotonic(), self._forced) for pool in self.pools)
        if not finished and not self._forced.is_set():
            busy = ", ".join(repr(pool) for pool in self.pools if not pool.wait_idle(0, self._forced))
            log.warning(
                "shutdown_timeout (%g s) passed with messages in flight: %s", self.service.shutdown_timeout, busy
            )
        self._close_everything()
        status = ExitStatus.OK if finished else ExitStatus.KILLED
        log.info("stopped (exit status %d)", status)
        return status

    def _close_everything(self) -> None:
        for pool in self.pools:
            pool.close()
        quick = self._forced.is_set()
        self.publisher.close(timeout=1.0 if quick else deadlines.PUBLISHER_CLOSE)
        self.supervisor.close(timeout=1.0 if quick else deadlines.CONSUMER_CLOSE)


def _qualified(function: object) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def _version() -> str:
    from .version import VERSION

    return VERSION
