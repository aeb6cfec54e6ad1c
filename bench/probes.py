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
    def __init__(self, expected: int, result_file: str) -> None:
        self.expected = expected
        self.result_file = result_file
        self.count = 0
        self.latencies: list[float] = []
        self._started: tuple[float, float] | None = None
        self._window = -1  # messages inside the measured window: the first one's handling is outside it

    @classmethod
    def from_environment(cls) -> Probe:
        return cls(int(os.environ["BENCH_COUNT"]), os.environ["BENCH_RESULT"])

    def begin(self) -> None:
        """A message's handling starts: for work that takes time, the window opens at the first start."""
        if self._started is None:
            self._started = (time.perf_counter(), time.process_time())
            self._window = 0

    def tick(self, published_at: float | None = None) -> None:
        """One message handled (published_at: its publisher's time.time(), for latency)."""
        if published_at is not None:
            self.latencies.append(time.time() - published_at)
        self.count += 1
        if self._started is None:
            self._started = (time.perf_counter(), time.process_time())
        if self.count == self.expected:
            self._write()

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
