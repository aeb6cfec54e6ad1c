"""The benchmark scenarios. Each returns Figures: ours, the other side's, the ratio, the target.

The other side is the bare pika loop, unless the scenario says otherwise (the theoretical
figure in 2, the same service configured otherwise in 8 and 9, another framework in 10). Both
sides run in fresh processes on the same vhost, alternating A B A B over the rounds, and each
figure is the median of its rounds: on a shared 2-core machine absolute numbers mean little,
ratios measured side by side mean a lot.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika

from amqp_dispatcher.runtime import transports

from . import build_time, comparison, frameworks, layer
from .harness import Broker, Project, Subject


@dataclass(frozen=True)
class Figure:
    scenario: str
    label: str
    unit: str
    ours: float
    bare: float | None  # the other side: the bare pika loop, the theoretical figure, or as the label says
    target: str
    met: bool | None

    @property
    def ratio(self) -> float | None:
        return self.ours / self.bare if self.bare else None

    def line(self) -> str:
        versus = f" (against: {_num(self.bare)} {self.unit}, ratio {self.ratio:.2f})" if self.bare else ""
        verdict = "" if self.met is None else (" ok" if self.met else " MISSED")
        return f"{self.scenario} {self.label}: {_num(self.ours)} {self.unit}{versus}; target {self.target}:{verdict}"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


@dataclass(frozen=True)
class Size:
    rounds: int  # scenarios 1, 2 and 5; latency runs are long, and take latency_rounds
    latency_rounds: int
    messages: int
    io_messages: int
    latency_rate: int
    latency_seconds: float
    scale_queues: int
    scale_instances: int
    publish_messages: int
    idle_seconds: float
    cpu_messages: int
    framework_messages: int  # scenario 10, per side and round: the other frameworks take 5 to 10 times as long
    layer_messages: int  # the layer diagnostic (bench/layer.py), per run
    layer_turns: int  # scenario 8's layer diagnostic: runs of each side, taking turns


FULL = Size(5, 3, 50_000, 20_000, 1000, 20.0, 100, 100, 5000, 10.0, 4000, 20_000, 200_000, 7)
QUICK = Size(1, 1, 5000, 2000, 500, 2.0, 10, 100, 500, 2.0, 300, 300, 20_000, 1)


def _config(consumer: str, *, count: int, prefetch: int, queues: int = 1, extra: str = "") -> str:
    entries = "".join(
        f"  - consumer: bench_consumers:{consumer}\n    queue: bench-in{_suffix(n, queues)}\n"
        f"    consumer_count: {count}\n    prefetch_count: {prefetch}\n"
        for n in range(queues)
    )
    declared = "".join(f"  - queue: bench-in{_suffix(n, queues)}\n    durable: false\n" for n in range(queues))
    return f"name: bench\n{extra}consumers:\n{entries}queues:\n{declared}  - queue: bench-out\n    durable: false\n"


def _suffix(number: int, total: int) -> str:
    return "" if total == 1 else f"-{number}"


def _alternate(
    rounds: int, ours: Callable[[], dict[str, Any]], bare: Callable[[], dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(ours())
        theirs.append(bare())
    return mine, theirs


def _rate(result: dict[str, Any]) -> float:
    """Messages per second inside the measured window (see probes.Probe)."""
    return float(result["count"] / result["seconds"])


def _cpu_per_message(result: dict[str, Any]) -> float:
    return float(result["cpu_seconds"] / result["count"] * 1e6)


def _consume(broker: Broker, subject: Callable[[], Subject], queue: str, count: int) -> dict[str, Any]:
    broker.fill(queue, count)
    run = subject()
    try:
        return run.result()
    finally:
        run.stop()
        broker.purge(queue)


def consume_and_ack(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 1: a no-op consumer; messages/s and CPU per message against the bare loop."""
    figures = []
    broker.declare("bench-in", "bench-out")
    for prefetch in (100, 1000):
        for count in (1, 10):
            figures += _consume_and_ack(broker, size, prefetch, count)
    cost = statistics.median(layer.cost_per_message(size.layer_messages) for _ in range(3))
    figures.append(
        Figure("1", "our per-message layer alone, no broker (diagnostic)", "µs CPU/msg", cost, None, "-", None)
    )
    return figures


def _consume_and_ack(broker: Broker, size: Size, prefetch: int, count: int) -> list[Figure]:
    """The service on its default transport (pamqp) and on pika's, against the bare pika loop,
    the three taking turns over the rounds."""
    project = Project(_config("NoOp", count=count, prefetch=prefetch))
    n = size.messages

    def ours(transport: str) -> Callable[[], dict[str, Any]]:
        subject = functools.partial(Subject.dispatcher, project, broker, n, transport)
        return functools.partial(_consume, broker, subject, "bench-in", n)

    bare_subject = functools.partial(Subject.bare, "ack", "bench-in", prefetch, broker, n)
    try:
        pamqp, pika_side, theirs = _take_turns(
            size.rounds, ours("pamqp"), ours("pika"), functools.partial(_consume, broker, bare_subject, "bench-in", n)
        )
    finally:
        project.remove()
    label = f"consume+ack, prefetch {prefetch}, consumer_count {count}"
    bare_rate, bare_cpu = statistics.median(map(_rate, theirs)), statistics.median(map(_cpu_per_message, theirs))
    # Faster than the hand-written loop: 1.3× at the usual prefetch of 100; with 1000 the bare
    # loop's own acks cost it less, and the target is to stay ahead of it.
    wanted = 1.3 if prefetch <= 100 else 1.0
    figures = []
    for results, suffix, judged in ((pamqp, "", True), (pika_side, ", pika transport", False)):
        rate, cpu = statistics.median(map(_rate, results)), statistics.median(map(_cpu_per_message, results))
        figures += [
            Figure(
                "1",
                label + suffix,
                "msg/s",
                rate,
                bare_rate,
                f"≥ {wanted:g}×" if judged else "-",
                rate >= wanted * bare_rate if judged else None,
            ),
            Figure(
                "1",
                label + suffix,
                "µs CPU/msg",
                cpu,
                bare_cpu,
                "≤ 1.0×" if judged else "-",
                cpu <= 1.0 * bare_cpu if judged else None,
            ),
        ]
    return figures


def _take_turns(rounds: int, *sides: Callable[[], dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each side once per round, in the same order: A B C A B C."""
    results: list[list[dict[str, Any]]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, collected in zip(sides, results, strict=True):
            collected.append(side())
    return results


def io_bound(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 2: 200 instances that each wait 50 ms: against the theoretical 4,000 msg/s."""
    broker.declare("bench-in", "bench-out")
    project = Project(_config("Sleeper", count=200, prefetch=400))
    try:
        rates = [
            _rate(
                _consume(
                    broker, lambda: Subject.dispatcher(project, broker, size.io_messages), "bench-in", size.io_messages
                )
            )
            for _ in range(size.rounds)
        ]
    finally:
        project.remove()
    rate = statistics.median(rates)
    return [Figure("2", "I/O-bound, 200 instances × 50 ms", "msg/s", rate, 4000.0, "≥ 0.9× theoretical", rate >= 3600)]


def latency(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 3: publish at a steady rate; time from publish to the start of consume."""
    broker.declare("bench-in", "bench-out")
    count = int(size.latency_rate * size.latency_seconds)
    project = Project(_config("Latency", count=10, prefetch=100))

    def run(subject: Callable[[], Subject], ready: str) -> dict[str, Any]:
        process = subject()
        try:
            process.wait_for_log(ready)
            _publish_steadily(broker, "bench-in", size.latency_rate, count)
            return process.result()
        finally:
            process.stop()
            broker.purge("bench-in")

    try:
        mine, theirs = _alternate(
            size.latency_rounds,
            lambda: run(lambda: Subject.dispatcher(project, broker, count), "ready:"),
            lambda: run(lambda: Subject.bare("latency", "bench-in", 100, broker, count), "ready"),
        )
    finally:
        project.remove()
    figures = []
    for name, quantile in (("p50", 0.50), ("p99", 0.99), ("max", 1.0)):
        ours = statistics.median(_quantile(result["latencies"], quantile) for result in mine) * 1000
        bare = statistics.median(_quantile(result["latencies"], quantile) for result in theirs) * 1000
        target, met = ("< 5 ms", ours < 5) if name == "p99" else ("-", None)
        figures.append(Figure("3", f"latency {name} at {size.latency_rate} msg/s", "ms", ours, bare, target, met))
    return figures


def scale(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 4: many instances in one process: time until every consumer is registered, and RSS."""
    total = size.scale_queues * size.scale_instances
    project = Project(
        _config("NoOp", count=size.scale_instances, prefetch=size.scale_instances, queues=size.scale_queues)
    )
    try:
        started = time.monotonic()
        process = Subject.dispatcher(project, broker, 1)
        try:
            process.wait_for_log("ready:", timeout=120)
            seconds = time.monotonic() - started
            rss = process.rss_megabytes()
        finally:
            process.stop()
    finally:
        project.remove()
    label = f"{total:,} instances over {size.scale_queues} queues"
    return [
        Figure("4", f"{label}: start to all registered", "s", seconds, None, "< 3 s", seconds < 3),
        Figure("4", f"{label}: resident memory", "MB", rss, None, "< 300 MB", rss < 300),
    ]


def publishing(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 5: consume, publish with confirms, ack, one at a time: against the bare loop doing the same."""
    broker.declare("bench-in", "bench-out")
    count = size.publish_messages
    project = Project(_config("Republisher", count=1, prefetch=1))

    def drained(subject: Callable[[], Subject]) -> dict[str, Any]:
        result = _consume(broker, subject, "bench-in", count)
        broker.purge("bench-out")
        return result

    try:
        mine, theirs = _alternate(
            size.rounds,
            lambda: drained(lambda: Subject.dispatcher(project, broker, count)),
            lambda: drained(lambda: Subject.bare("publish", "bench-in", 1, broker, count)),
        )
    finally:
        project.remove()
    rate, bare = statistics.median(map(_rate, mine)), statistics.median(map(_rate, theirs))
    return [Figure("5", "consume, publish with confirm, ack", "msg/s", rate, bare, "-", None)]


def build(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 6: building 1,000 consumers over 200 queues, and importing the package."""
    result = build_time.run(size.rounds)
    return [
        Figure(
            "6", "build 1,000 consumers over 200 queues", "s", result["build_s"], None, "< 2 s", result["build_s"] < 2
        ),
        Figure("6", "import of the generated package", "ms", result["import_s"] * 1000, None, "-", None),
    ]


def idle(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 7: an idle service with 10 consumer entries."""
    project = Project(_config("NoOp", count=4, prefetch=4, queues=10))
    try:
        process = Subject.dispatcher(project, broker, 1)
        try:
            process.wait_for_log("ready:")
            time.sleep(1)
            before, started = process.cpu_seconds(), time.monotonic()
            time.sleep(size.idle_seconds)
            share = (process.cpu_seconds() - before) / (time.monotonic() - started) * 100
        finally:
            process.stop()
    finally:
        project.remove()
    return [
        Figure(
            "7", f"idle, 10 consumer entries, {size.idle_seconds:g} s", "% of a core", share, None, "< 1%", share < 1
        )
    ]


def metrics_cost(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 8: what metrics cost. Scenario 1's no-op consumer with the HTTP endpoint on
    against the same service with it off; then, with it on, a scraper that reads /metrics ten
    times a second against none."""
    broker.declare("bench-in", "bench-out")
    project = Project(_config("NoOp", count=1, prefetch=100))
    n = size.messages
    port = _free_port()
    metered = {"DISPATCHER_HTTP_PORT": str(port), "DISPATCHER_HTTP_HOST": "127.0.0.1"}

    def run(env: dict[str, str], scrape: bool) -> dict[str, Any]:
        subject = functools.partial(Subject, [sys.executable, "-m", "service"], project.root, broker, n, env)
        with _Scraper(port) if scrape else contextlib.nullcontext():
            return _consume(broker, subject, "bench-in", n)

    try:
        on, off = _alternate(size.rounds, lambda: run(metered, False), lambda: run({}, False))
        scraped, quiet = _alternate(size.rounds, lambda: run(metered, True), lambda: run(metered, False))
    finally:
        project.remove()
    cpu_on, cpu_off = statistics.median(map(_cpu_per_message, on)), statistics.median(map(_cpu_per_message, off))
    rate, quiet_rate = statistics.median(map(_rate, scraped)), statistics.median(map(_rate, quiet))
    # In this process, taking turns and swapping who goes first, so that neither side is always
    # the one measured after the other warmed the caches; seven turns, because one run of each
    # varies by ±1.5 µs on a shared machine, more than the cost measured.
    layer_costs: dict[bool, list[float]] = {True: [], False: []}
    for turn in range(size.layer_turns):
        for metrics in (True, False) if turn % 2 == 0 else (False, True):
            layer_costs[metrics].append(layer.cost_per_message(size.layer_messages, metrics=metrics))
    layer_on, layer_off = statistics.median(layer_costs[True]), statistics.median(layer_costs[False])
    return [
        Figure(
            "8",
            "our per-message layer alone, no broker, metrics on (ours) and off (bare) (diagnostic)",
            "µs CPU/msg",
            layer_on,
            layer_off,
            "≤ +1 µs",
            layer_on - layer_off <= 1.0,
        ),
        Figure(
            "8",
            "consume+ack with metrics on (ours) and off (bare), prefetch 100",
            "µs CPU/msg",
            cpu_on,
            cpu_off,
            "≤ +1 µs",
            cpu_on - cpu_off <= 1.0,
        ),
        Figure(
            "8",
            "consume+ack with /metrics scraped 10 times a second (ours) and not scraped (bare)",
            "msg/s",
            rate,
            quiet_rate,
            "≥ 0.95×",
            rate >= 0.95 * quiet_rate,
        ),
    ]


def processes(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 9: `processes: 2` against `processes: 1` on the same machine, alternating: a
    CPU-bound consumer (about 1 ms of CPU per message) and an I/O-bound one (10 ms waits). The
    figures of a service of several processes are its workers' added up (harness.Subject)."""
    broker.declare("bench-in", "bench-out")
    figures = []
    for consumer, count, prefetch, messages, label, wanted in (
        ("Burner", 2, 20, size.cpu_messages, "CPU-bound, about 1 ms of CPU per message", 1.6),
        ("Waiter", 20, 40, size.io_messages // 2, "I/O-bound, 20 instances × 10 ms per process", None),
    ):
        project = Project(_config(consumer, count=count, prefetch=prefetch))

        def run(workers: int, project: Project = project, messages: int = messages) -> dict[str, Any]:
            env = {"DISPATCHER_PROCESSES": str(workers), "BENCH_SHARED": "1"}
            subject = functools.partial(Subject, [sys.executable, "-m", "service"], project.root, broker, messages, env)
            return _consume(broker, subject, "bench-in", messages)

        try:
            two, one = _alternate(size.rounds, lambda run=run: run(2), lambda run=run: run(1))
        finally:
            project.remove()
        rate, single = statistics.median(map(_rate, two)), statistics.median(map(_rate, one))
        target, met = (f"≥ {wanted}×", rate >= wanted * single) if wanted else ("-", None)
        figures.append(
            Figure("9", f"{label}: processes 2 (ours) against processes 1 (bare)", "msg/s", rate, single, target, met)
        )
    return figures


def other_frameworks(broker: Broker, size: Size) -> list[Figure]:
    """Scenario 10: the same pre-filled workload through FastStream, dramatiq and Celery, each
    against our service in the same run, alternating; no-op handlers, acks after the handler,
    the same concurrency and prefetch on every side (comparison.py has each one's settings). A
    framework that is not installed is skipped, with the extra that installs it."""
    broker.declare("bench-in", "bench-out")
    project = Project(_config("NoOp", count=frameworks.CONCURRENCY, prefetch=frameworks.PREFETCH))
    figures = []
    try:
        for framework in comparison.FRAMEWORKS:
            if framework.is_installed():
                figures += _against_framework(broker, size, project, framework)
            else:
                hint = f"pip install -e '.[{framework.extra}]' (scripts/bench installs it)"
                print(f"10 {framework.name}: skipped, not installed: {hint}", flush=True)
    finally:
        project.remove()
    return figures


def _against_framework(broker: Broker, size: Size, project: Project, framework: comparison.Framework) -> list[Figure]:
    n = size.framework_messages
    ours = functools.partial(_consume, broker, functools.partial(Subject.dispatcher, project, broker, n), "bench-in", n)
    try:
        mine, theirs = _alternate(size.rounds, ours, functools.partial(_run_framework, broker, framework, n))
    finally:
        framework.remove(broker)
    # The transport changes our figures the most (DISPATCHER_TRANSPORT reaches the service through
    # the environment, as it would in production), so the label says which one ran.
    transport = transports.name_from_environment(os.environ)
    label = (
        f"against {framework.name} {framework.version()}: consume+ack, "
        f"{frameworks.CONCURRENCY} handlers, prefetch {frameworks.PREFETCH}, ours on {transport}"
    )
    rate, their_rate = statistics.median(map(_rate, mine)), statistics.median(map(_rate, theirs))
    cpu, their_cpu = statistics.median(map(_cpu_per_message, mine)), statistics.median(map(_cpu_per_message, theirs))
    return [
        Figure("10", label, "msg/s", rate, their_rate, "≥ 1×", rate >= their_rate),
        Figure("10", label, "µs CPU/msg", cpu, their_cpu, "≤ 1×", cpu <= their_cpu),
    ]


def _run_framework(broker: Broker, framework: comparison.Framework, count: int) -> dict[str, Any]:
    """One round of the framework's side: its workload published its way, then a fresh worker."""
    framework.fill(broker, count)
    run = framework.start(broker, count)
    try:
        return run.result()
    finally:
        run.stop()
        broker.purge(framework.queue)


class _Scraper:
    """Reads /metrics every 0.1 s from a thread, as long as the block runs."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as answer:
                    answer.read()
                self.scrapes += 1
            except OSError:
                continue  # not serving yet, or already stopped


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SCENARIOS: dict[str, Callable[[Broker, Size], list[Figure]]] = {
    "1": consume_and_ack,
    "2": io_bound,
    "3": latency,
    "4": scale,
    "5": publishing,
    "6": build,
    "7": idle,
    "8": metrics_cost,
    "9": processes,
    "10": other_frameworks,
}


def _quantile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _publish_steadily(broker: Broker, queue: str, rate: int, count: int) -> None:
    """`count` messages at `rate` per second, each stamped with its publish time."""
    connection = broker.connection()
    channel = connection.channel()
    started = time.perf_counter()
    for number in range(count):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        properties = pika.BasicProperties(headers={"published_at": repr(time.time())})
        channel.basic_publish("", queue, b"x" * 200, properties)
    connection.close()
