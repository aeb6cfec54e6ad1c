"""The parent of several worker processes: `processes: N`, for a service that needs more than one core.

Owns the workers' lives. Each worker is this same command started again (a fresh interpreter:
no connection, thread, lock or gevent hub crosses into it), told by DISPATCHER_WORKER which
worker it is and where its channel to the parent is (worker.py); each has its own connections
and pools, and runs the startup handler itself. The parent runs no consumer and never connects
to the broker. It:

- starts a worker again when one ends, after a backoff that doubles while workers keep ending
  soon after their start; a worker that ends with the config or refusal statuses (2, 3) stops
  the whole service with that status instead, since starting it again cannot help (and so does
  a command that cannot be run at all);
- on SIGTERM or SIGINT, asks every worker to drain, waits for them up to
  deadlines.parent_deadline(shutdown_timeout), then kills what is left; a second signal asks
  them to stop at once. It exits with the worst status of its workers, or with the 2 or 3 that
  stopped it;
- serves the whole service's endpoint, if any (fleet.py says what it answers).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.event
import gevent.socket
import gevent.subprocess

from . import deadlines
from .errors import ConfigurationError, ExitStatus
from .fleet import Fleet, Slot
from .logs import PROCESSES, get_logger
from .pool import doubling
from .signals import stop_signals
from .spec import Http, LiveService
from .version import VERSION
from .worker import VARIABLE, WorkerIdentity

log = get_logger(PROCESSES)

RESTART_BASE = 0.5
RESTART_CAP = 30.0
STEADY = 30.0  # a worker that ran this long had no trouble starting: its replacement starts without delay
FORCED_GRACE = 5.0  # after a second signal: workers stop within about 2 s (deadlines: 1 s for each connection)
_CANNOT_RUN = {errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR}  # the command, not the moment
_STOPS_THE_SERVICE: dict[int, str] = {
    ExitStatus.CONFIG: "the config, the environment or the startup handler is wrong",
    ExitStatus.BROKER: "the broker refused, or stayed unreachable at start",
}


class Parent:
    def __init__(
        self, service: LiveService, count: int, command: Sequence[str], *, http: Http | None, generator: str | None
    ) -> None:
        self.service = service
        self.command = list(command)
        self.fleet = Fleet(service, [Slot(index) for index in range(1, count + 1)], generator)
        self.endpoint = self.fleet.endpoint(http) if http is not None else None
        self._stop = gevent.event.Event()
        self._forced = gevent.event.Event()
        self._signals = 0
        self._fatal: int | None = None

    def __repr__(self) -> str:
        return f"<Parent of {len(self.fleet.slots)} workers of {self.service.name}>"

    def run(self) -> int:
        with stop_signals(self._on_signal):
            return self._run()

    def _run(self) -> int:
        log.info(
            "starting %s as %d worker processes (amqp-dispatcher %s), parent pid %d",
            self.service.name,
            len(self.fleet.slots),
            VERSION,
            os.getpid(),
        )
        if self.endpoint is not None:
            try:
                self.endpoint.start()
            except ConfigurationError as error:
                log.error("%s", error)
                return ExitStatus.CONFIG
        keepers = [gevent.spawn(self._keep, slot) for slot in self.fleet.slots]
        try:
            self._stop.wait()
            return self._stop_workers(keepers)
        except BaseException:
            log.exception("the parent process failed; killing its workers")
            self._stop.set()  # first: no keeper starts a worker again
            self._kill_workers("the parent failed")
            return ExitStatus.INTERNAL
        finally:
            if self.endpoint is not None:
                self.endpoint.stop()

    def _on_signal(self, number: int) -> None:
        self._signals += 1
        name = signal.Signals(number).name
        if self._signals == 1:  # the first signal drains, even if a worker's 2 or 3 started the stop
            log.info(
                "%s received: stopping %d workers, each finishing its in-flight messages (up to %g s)",
                name,
                len(self.fleet.slots),
                self.service.shutdown_timeout,
            )
            self._stop.set()
        elif not self._forced.is_set():
            log.warning("%s received again: stopping the workers now; unfinished messages return to their queues", name)
            self._forced.set()

    def _keep(self, slot: Slot) -> None:
        """One worker's place, for the parent's whole life: start it, and again after it ends."""
        try:
            self._keep_running(slot)
        except Exception:  # a bug here must stop the service, not leave a place empty for good
            log.exception("keeping worker %d failed; stopping the service", slot.index)
            if self._fatal is None:
                self._fatal = ExitStatus.INTERNAL
            self._stop.set()

    def _keep_running(self, slot: Slot) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            status = self._run_worker(slot)
            if self._stop.is_set():
                slot.final_status = status
                return
            why = _STOPS_THE_SERVICE.get(status)
            if why is not None:
                log.error(
                    "worker %d exited with status %d (%s); stopping the service, since starting it again cannot help",
                    slot.index,
                    status,
                    why,
                )
                slot.final_status = self._fatal = status
                self._stop.set()
                return
            slot.failures = 0 if time.monotonic() - started >= STEADY else slot.failures + 1
            delay = doubling(RESTART_BASE, slot.failures - 1, RESTART_CAP) if slot.failures else 0.0
            log.warning("worker %d %s; starting it again in %.1f s", slot.index, _ended(status), delay)
            slot.next_start = time.monotonic() + delay
            if self._stop.wait(delay):
                return
            slot.restarts += 1

    def _run_worker(self, slot: Slot) -> int:
        """Start the worker, read its reports until it ends; its exit status (negative: a signal)."""
        mine, theirs = gevent.socket.socketpair()
        os.set_blocking(theirs.fileno(), True)  # as any program expects what it inherits (gevent's are not)
        identity = WorkerIdentity(slot.index, len(self.fleet.slots), theirs.fileno())
        environment = {**os.environ, VARIABLE: identity.environment()}
        try:
            process = gevent.subprocess.Popen(self.command, env=environment, pass_fds=[theirs.fileno()])
        except OSError as error:
            mine.close()
            if error.errno in _CANNOT_RUN:  # starting it again cannot help
                log.error("cannot start worker %d with %s: %s", slot.index, self.command[0], error)
                return ExitStatus.CONFIG
            log.error("cannot start worker %d now: %s", slot.index, error)  # out of processes or memory
            return ExitStatus.INTERNAL
        finally:
            theirs.close()
        slot.attach(process, mine)
        log.info("worker %d started, pid %d", slot.index, process.pid)
        if self._stop.is_set():  # a signal came while it started
            slot.request(b"stop")
        if self._forced.is_set():
            slot.request(b"now")
        reader = gevent.spawn(self.fleet.read_reports, slot)
        try:
            status = process.wait()
        finally:
            reader.join(timeout=2.0)
            reader.kill()
            self.fleet.retire(slot)
        return status

    def _stop_workers(self, keepers: Sequence[gevent.Greenlet[Any, None]]) -> int:
        self.fleet.stopping = True
        for slot in self.fleet.slots:
            slot.request(b"stop")
        deadline = time.monotonic() + deadlines.parent_deadline(self.service.shutdown_timeout)
        asked_now = False
        while not all(keeper.dead for keeper in keepers) and time.monotonic() < deadline:
            if self._forced.is_set() and not asked_now:
                for slot in self.fleet.slots:
                    slot.request(b"now")
                asked_now, deadline = True, min(deadline, time.monotonic() + FORCED_GRACE)
            waiting: list[gevent.Greenlet[Any, None] | gevent.event.Event] = [k for k in keepers if not k.dead]
            if not asked_now:  # until it is acted on: once set, it would end every wait at once
                waiting.append(self._forced)
            gevent.wait(waiting, timeout=max(0.0, deadline - time.monotonic()), count=1)
        why = "the second signal" if asked_now else f"{deadlines.parent_deadline(self.service.shutdown_timeout):g} s"
        killed = self._kill_workers(f"it did not stop within {why}")
        gevent.joinall(keepers, timeout=5.0)
        statuses = [_status(slot.final_status) for slot in self.fleet.slots if slot.final_status is not None]
        worst = max([*statuses, ExitStatus.KILLED if killed else ExitStatus.OK])
        status = worst if self._fatal is None else self._fatal  # the status that stopped the service says why
        log.info("stopped %d workers (exit status %d)", len(self.fleet.slots), status)
        return status

    def _kill_workers(self, why: str) -> bool:
        """SIGKILL every worker still running; whether there was one."""
        killed = False
        for slot in self.fleet.slots:
            process = slot.process
            if process is not None and process.poll() is None:
                log.warning(
                    "killing worker %d (pid %d): %s; the broker returns its unacknowledged messages to their queues",
                    slot.index,
                    process.pid,
                    why,
                )
                process.kill()
                killed = True
        return killed


def _status(returncode: int) -> int:
    """A worker's exit status as the service's: killed by a signal is KILLED; an unknown status is INTERNAL."""
    if returncode < 0:
        return ExitStatus.KILLED
    return returncode if returncode in ExitStatus._value2member_map_ else ExitStatus.INTERNAL


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
