"""What the parent of several workers knows of them, and what its endpoint says of the whole service.

Owns each worker's place (Slot: its process, its channel, its last report) and reading the
reports (worker.py writes them). From them it answers for the whole service, on the parent's
one port:

- /metrics: every worker's counts added up, those of workers that have ended included
  (snapshot.merge), plus how many workers run and how often one was started again;
- /readyz: ready only when every worker runs, has reported within STALE seconds, and is ready
  itself; otherwise each worker that is not says why;
- /livez: fails while a worker that has reported before has not reported for STALE seconds (its
  gevent hub is blocked, as /livez of a single process would time out), or while one has not
  reported at all for startup_timeout + STALE seconds after its start (its imports or startup
  handler hang); one being started again does not fail it;
- /info: the service, and each worker's pid, restarts and readiness.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent.socket
import gevent.subprocess

from . import health, snapshot
from .endpoint import HttpEndpoint
from .logs import PROCESSES, get_logger
from .metrics import Exposition
from .spec import Http, LiveService

log = get_logger(PROCESSES)

STALE = 5.0  # seconds without a report: the worker's hub is blocked (it reports every second)
_LONGEST_REPORT = 16 * 1024 * 1024


@dataclass(eq=False)
class Slot:
    """One worker's place: the process in it now, if any, and what the parent knows of it."""

    index: int
    process: gevent.subprocess.Popen[bytes] | None = None
    channel: gevent.socket.socket | None = None
    report: snapshot.Snapshot | None = None
    not_ready: list[str] = field(default_factory=list)
    reported_at: float | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0  # ended soon after starting, in a row
    next_start: float | None = None
    final_status: int | None = None

    def attach(self, process: gevent.subprocess.Popen[bytes], channel: gevent.socket.socket) -> None:
        self.process, self.channel, self.started_at = process, channel, time.monotonic()
        self.report, self.not_ready, self.reported_at, self.next_start = None, [], None, None

    def request(self, line: bytes) -> None:
        """Ask the worker to `stop` or stop `now`; one that has ended or not started needs nothing."""
        channel = self.channel
        if channel is None:
            return
        with contextlib.suppress(OSError):  # it has ended; its exit is being collected
            channel.sendall(line + b"\n")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None


class Fleet:
    def __init__(self, service: LiveService, slots: Sequence[Slot], generator: str | None) -> None:
        self.service = service
        self.slots = list(slots)
        self.generator = generator
        self.retired = snapshot.empty(len(service.consumers))
        self.stopping = False  # set by the parent once it stops its workers

    def __repr__(self) -> str:
        return f"<Fleet of {len(self.slots)} workers of {self.service.name}>"

    def endpoint(self, address: Http) -> HttpEndpoint:
        exposition = Exposition(self.service, self.snapshot)
        return HttpEndpoint(
            address, ready=self.not_ready, live=self.not_alive, info=self.info, metrics=exposition.render
        )

    def read_reports(self, slot: Slot) -> None:
        """Read one worker's reports until its channel closes (it has ended)."""
        channel = slot.channel
        assert channel is not None
        reader = channel.makefile("rb")
        try:
            while line := reader.readline(_LONGEST_REPORT):
                self._take(slot, line)
        except OSError:
            pass
        finally:
            reader.close()

    def retire(self, slot: Slot) -> None:
        """The worker in `slot` has ended: keep its counts, forget its states."""
        if slot.report is not None:
            self.retired = snapshot.merge([snapshot.retire(slot.report)], self.retired)
        channel, slot.channel, slot.report, slot.reported_at = slot.channel, None, None, None
        if channel is not None:
            channel.close()

    def snapshot(self) -> snapshot.Snapshot:
        # A worker that has ended keeps its counts here until retire() has moved them (its states
        # are zero): no counter of the whole service may dip in between.
        reports = [
            slot.report if slot.pid is not None else snapshot.retire(slot.report)
            for slot in self.slots
            if slot.report is not None
        ]
        total = snapshot.merge(reports, self.retired)
        total["service"]["workers"] = sum(1 for slot in self.slots if slot.pid is not None)
        total["service"]["worker_restarts"] = sum(slot.restarts for slot in self.slots)
        return total

    def not_ready(self) -> list[str]:
        problems = ["the service is stopping"] if self.stopping else []
        now = time.monotonic()
        for slot in self.slots:
            pid = slot.pid
            if pid is None:
                again = "it has stopped" if self.stopping else "it is being started again"
                problems.append(f"worker {slot.index} is not running; {again}")
            elif slot.reported_at is None:
                problems.append(f"worker {slot.index} (pid {pid}) is starting")
            elif now - slot.reported_at > STALE:
                problems.append(f"worker {slot.index} (pid {pid}) has not reported for {now - slot.reported_at:.0f} s")
            else:
                problems.extend(f"worker {slot.index} (pid {pid}): {problem}" for problem in slot.not_ready)
        return problems

    def not_alive(self) -> list[str]:
        now, problems = time.monotonic(), []
        for slot in self.slots:
            pid = slot.pid
            if pid is None:
                continue
            if slot.reported_at is not None and now - slot.reported_at > STALE:
                problems.append(
                    f"worker {slot.index} (pid {pid}) has not reported for {now - slot.reported_at:.0f} s: "
                    "its gevent hub may be blocked"
                )
            elif slot.reported_at is None and now - slot.started_at > self.service.startup_timeout + STALE:
                problems.append(
                    f"worker {slot.index} (pid {pid}) has not reported in the {now - slot.started_at:.0f} s since it "
                    "started: its imports or its startup handler may hang"
                )
        return problems

    def info(self) -> dict[str, Any]:
        answer = health.info(self.service, self.generator, processes=len(self.slots))
        problems = self.not_ready()
        answer["workers"] = [
            {
                "worker": slot.index,
                "pid": slot.pid,
                "restarts": slot.restarts,
                "ready": not any(problem.startswith(f"worker {slot.index} ") for problem in problems),
            }
            for slot in self.slots
        ]
        return answer

    def _take(self, slot: Slot, line: bytes) -> None:
        try:
            report = json.loads(line)
            counts, not_ready = report["snapshot"], report["not_ready"]
            if not snapshot.conforms(counts, len(self.service.consumers)) or not isinstance(not_ready, list):
                raise ValueError("not the shape of this build's reports")
        except (ValueError, KeyError, TypeError) as error:  # a worker of another build; never a crash here
            log.warning("worker %d sent a report that cannot be read (%s); ignoring it", slot.index, error)
            return
        slot.report, slot.not_ready, slot.reported_at = counts, [str(item) for item in not_ready], time.monotonic()
