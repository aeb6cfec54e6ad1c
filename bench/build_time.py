"""Scenario 6: building 1,000 consumers over 200 queues, and importing the generated package."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONSUMER_MODULE = """
class Consumer:
    def consume(self, amqp, msg):
        pass

    def shutdown(self, exception=None):
        pass
"""


def write_project(directory: Path, consumers: int = 1000, queues: int = 200) -> Path:
    (directory / "bench_consumers.py").write_text(CONSUMER_MODULE)
    lines = ["name: bench", "consumers:"]
    for index in range(consumers):
        lines += [
            "  - consumer: bench_consumers:Consumer",
            f"    queue: bench-{index % queues}",
            "    consumer_count: 2",
            "    prefetch_count: 10",
        ]
    lines += ["exchanges:", "  - exchange: bench", "    type: topic", "queues:"]
    for index in range(queues):
        lines += [
            f"  - queue: bench-{index}",
            "    x_message_ttl: 60000",
            "    bindings:",
            "      - exchange: bench",
            f"        routing_key: bench.{index}.#",
        ]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _time(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def run(rounds: int) -> dict[str, float]:
    """Median wall time of a whole `dispatcher-build` run, and of importing its output."""
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        write_project(directory)
        build = [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "config.yml", "-o", "service"]
        builds = [_time(build, directory) for _ in range(rounds)]
        empty = [_time([sys.executable, "-c", "pass"], directory) for _ in range(rounds)]
        imports = [_time([sys.executable, "-c", "import service"], directory) for _ in range(rounds)]
    startup = statistics.median(empty)
    return {
        "build_s": statistics.median(builds),
        "import_s": statistics.median(imports) - startup,
        "interpreter_start_s": startup,
    }
