"""Time, as the runtime and the in-memory broker read it and wait on it.

Owns the `Clock` seam and its two implementations. `REAL` is the process's clocks and gevent's
sleep: what a service runs on. `ManualClock` moves only when a test moves it, so that a retry
delay of a minute, a message TTL or a consumer's replacement backoff passes in a test in no
real time, and in the same order as it would on the real clock. Knows nothing of AMQP.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

import gevent
import gevent.event


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the runtime asks of time: two readings, a wait, and a callback for later."""

    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Seconds since the epoch, for what a message records (x-death's time, parked-at)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling greenlet for `seconds` of this clock's time."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` in the hub after `seconds` of this clock's time; it must not block."""
        ...


class _RealTimer:
    __slots__ = ("_watcher",)

    def __init__(self, seconds: float, callback: Callable[[], None]) -> None:
        self._watcher = gevent.get_hub().loop.timer(max(seconds, 0.0))
        self._watcher.start(callback)

    def cancel(self) -> None:
        self._watcher.stop()
        self._watcher.close()


class RealClock:
    """The process's clocks; waits are gevent's."""

    def __repr__(self) -> str:
        return "<RealClock>"

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return _RealTimer(seconds, callback)


REAL: Clock = RealClock()


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only in `advance` (or one timer at a time in `fire_next`).

    Timers fire in deadline order, with the clock reading each one's deadline as it fires, so a
    chain (a sleep that ends, then a TTL that starts) sees the times it would see for real.
    `settle` runs after each timer fires: by default a turn of the hub, so that what the timer
    woke runs before the next one fires; the test kit gives one that runs until nothing moves.
    """

    def __init__(self, *, start: float = 0.0, epoch: float = 1_767_225_600.0) -> None:
        self._now = start
        self._epoch = epoch - start  # time() = epoch at the start, moving with monotonic()
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()
        self.settle: Callable[[], None] = _one_turn

    def __repr__(self) -> str:
        return f"<ManualClock at {self._now:g} s, {self.pending} timers>"

    @property
    def pending(self) -> int:
        return sum(not timer.cancelled for _, _, timer in self._timers)

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._epoch + self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            gevent.sleep(0)
            return
        woken = gevent.event.Event()
        timer = self.call_later(seconds, woken.set)
        try:
            woken.wait()
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(self._now + max(seconds, 0.0), callback)
        heapq.heappush(self._timers, (timer.deadline, next(self._order), timer))
        return timer

    def next_deadline(self) -> float | None:
        """When the next timer fires, or None if none is waiting."""
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    def fire_next(self, until: float) -> bool:
        """Fire the earliest timer due by `until`, moving the clock to its deadline; False if none."""
        self._drop_cancelled()
        if not self._timers or self._timers[0][0] > until:
            return False
        deadline, _, timer = heapq.heappop(self._timers)
        self._now = max(self._now, deadline)
        timer.callback()
        self.settle()
        return True

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`, firing every timer that falls due on the way."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, not by {seconds!r} s")
        target = self._now + seconds
        self.settle()
        while self.fire_next(target):
            pass
        self._now = max(self._now, target)
        self.settle()

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)


def _one_turn() -> None:
    gevent.sleep(0)
