"""The hub watchdog: says which consumer blocked the gevent hub, for how long, and where.

A handler that never yields (a CPU loop, or blocking I/O without monkey-patching) stalls the
hub: heartbeats, every other consumer and the signal handlers wait until it returns, and past
twice the heartbeat the broker drops the connection. gevent already has the detector, its
monitor thread (gevent.config.monitor_thread and max_blocking_time); this module turns its
reports into one log line naming the consumer entry, its queue and its stack, and repeats it
at most every REPEAT_EVERY seconds while the same greenlet stays blocked. It cannot unblock
anything: the report is all gevent can give while the hub is stuck.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.events

from .logs import WATCHDOG, Lines, get_logger
from .metrics import ServiceMetrics

log = get_logger(WATCHDOG)

REPEAT_EVERY = 10.0
_ADVICE = (
    "heartbeats and every other consumer wait until it yields; use gevent-friendly libraries "
    "(or monkey_patch: true) for blocking I/O, and gevent.sleep(0) or a process pool for CPU-heavy work"
)


def default_threshold(heartbeat: int) -> float:
    """A tenth of the heartbeat (the broker gives up after two missed ones), at least 0.5 s."""
    return max(heartbeat / 10, 0.5) if heartbeat else 1.0


class HubWatchdog:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._blocked: Any = None
        self._since = 0.0
        self._last_report = 0.0
        self.metrics: ServiceMetrics | None = None  # set by the runner when the HTTP endpoint is on

    def __repr__(self) -> str:
        return f"<HubWatchdog threshold {self.threshold:g} s>"

    def start(self) -> None:
        gevent.config.monitor_thread = True
        gevent.config.max_blocking_time = self.threshold
        gevent.config.print_blocking_reports = False  # we log it, once, with the consumer's name
        gevent.events.subscribers.append(self._on_event)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unable to monitor memory usage": we do not ask it to
            gevent.get_hub().start_periodic_monitoring_thread()
        log.info("hub watchdog on: reports a consumer that blocks the hub for more than %g s", self.threshold)

    def stop(self) -> None:
        if self._on_event in gevent.events.subscribers:
            gevent.events.subscribers.remove(self._on_event)
        monitor = gevent.get_hub().periodic_monitoring_thread
        if monitor is not None:
            monitor.kill()

    def _count(self) -> None:
        if self.metrics is not None:  # from the monitoring thread; the hub is stopped meanwhile
            self.metrics.hub_blocked += 1

    def _on_event(self, event: object) -> None:
        """Runs in gevent's monitoring thread."""
        if not isinstance(event, gevent.events.EventLoopBlocked):
            return
        now = time.monotonic()
        blocked = event.greenlet
        if blocked is not self._blocked or now - self._last_report > 2 * self.threshold + REPEAT_EVERY:
            self._blocked, self._since, self._last_report = blocked, now - self.threshold, now
            self._count()
            who = getattr(blocked, "name", None) or repr(blocked)
            log.warning(
                "%s blocked the gevent hub for more than %g s: %s\n%s",
                who,
                self.threshold,
                _ADVICE,
                Lines(_stack(event.info)),
            )
        elif now - self._last_report >= REPEAT_EVERY:
            self._last_report = now
            self._count()
            who = getattr(blocked, "name", None) or repr(blocked)
            log.warning("%s is still blocking the gevent hub (%.0f s so far)", who, now - self._since)


def _stack(report: Sequence[str]) -> str:
    """The blocked greenlet's stack, out of gevent's long report."""
    text = "\n".join(report)
    start = text.find("Blocked Stack")
    end = text.find("\nInfo:", start)
    if start < 0:
        return text
    lines = text[start:end].splitlines()[1:]
    return "\n".join(line for line in lines if line.strip())
