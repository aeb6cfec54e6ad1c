"""Measurement shared by both sides of a comparison: counting messages, CPU and latency.

Imported by the dispatcher's benchmark consumers and by the bare pika loop, so that both
measure in exactly the same way: from the first message to the last, wall time and the
process's CPU time, and for latency the time from publish to the start of handling.
"""

from __future__ import annotations

import json
import os
import time


class Probe:
    """Counts in one process. With BENCH_SHARED set (a service of several worker processes), each
    process writes its figures to `<result>.<pid>` as it goes, and the harness adds them up
    (harness.Subject.result): no process knows how many messages the others had."""

    def __init__(self, expected: int, result_file: str, *, shared: bool = False) -> None:
        self.expected = expected
        self.result_file = result_file
        self.shared = shared
        self._last = 0.0
        self._written_at = 0.0
        self.count = 0
        self.latencies: list[float] = []
        self._started: tuple[float, float] | None = None
        self._window = -1  # messages inside the measured window: the first one's handling is outside it
        self._first = 0.0

    @classmethod
    def from_environment(cls) -> Probe:
        shared = bool(os.environ.get("BENCH_SHARED"))
        return cls(int(os.environ["BENCH_COUNT"]), os.environ["BENCH_RESULT"], shared=shared)

    def begin(self) -> None:
        """A message's handling starts: for work that takes time, the window opens at the first start."""
        if self._started is None:
            self._started = (time.perf_counter(), time.process_time())
            self._first = time.time()
            self._window = 0

    def tick(self, published_at: float | None = None) -> None:
        """One message handled (published_at: its publisher's time.time(), for latency)."""
        if published_at is not None:
            self.latencies.append(time.time() - published_at)
        self.count += 1
        if self._started is None:
            self._started = (time.perf_counter(), time.process_time())
            self._first = time.time()
        if self.shared:
            self._last = time.time()
            if self._last - self._written_at > 0.05:
                self._write_shared()
        elif self.count == self.expected:
            self._write()

    def flush(self) -> None:
        """Shared mode: write this process's figures now (a timer calls it, for the last messages)."""
        if self.shared and self._started is not None:
            self._write_shared()

    def _write_shared(self) -> None:
        assert self._started is not None
        self._written_at = time.time()
        result = {
            "count": self.count,
            "first": self._first,
            "last": self._last,
            "cpu_seconds": time.process_time() - self._started[1],
        }
        temporary = f"{self.result_file}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(result, out)
        os.replace(temporary, f"{self.result_file}.{os.getpid()}")

    def _write(self) -> None:
        assert self._started is not None
        wall, cpu = time.perf_counter() - self._started[0], time.process_time() - self._started[1]
        result = {
            "count": self.count + self._window,
            "seconds": wall,
            "cpu_seconds": cpu,
            "latencies": sorted(self.latencies),
        }
        temporary = self.result_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(result, out)
        os.replace(temporary, self.result_file)
