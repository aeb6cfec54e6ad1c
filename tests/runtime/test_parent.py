"""The parent of several workers: what users rely on when they set `processes: N`.

A worker that ends is started again, with backoff; one that ends with the config or refusal
status stops the whole service with it; a stop reaches every worker, a second one stops them
at once, and a worker that will not stop is killed at the deadline; the parent exits with the
worst status. The workers here are tests/runtime/fake_worker.py, scripted per test, speaking
the real channel; the parent is the real one.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime import fleet, parent
from amqp_dispatcher.runtime.errors import ExitStatus
from amqp_dispatcher.runtime.parent import Parent
from amqp_dispatcher.runtime.spec import ConsumerEntry, Requeue

from .rig import queue, service, wait_for

FAKE = str(Path(__file__).with_name("fake_worker.py"))
ENTRY = ConsumerEntry(consumer=object, queue="q", consumer_count=1, prefetch_count=1, on_error=Requeue())


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parent, "RESTART_BASE", 0.01)


class Run:
    """A parent of `count` fake workers, running in a greenlet of this process."""

    def __init__(self, folder: Path, plan: dict[int, list[str]], count: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.starts = folder / "starts"
        self.starts.write_text("")
        monkeypatch.setenv("FAKE_PLAN", json.dumps({str(index): steps for index, steps in plan.items()}))
        monkeypatch.setenv("FAKE_LOG", str(self.starts))
        monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2] / "src"))
        self.parent = Parent(service((ENTRY,), (queue("q"),)), count, [sys.executable, FAKE], http=None, generator=None)
        self.greenlet = gevent.spawn(self.parent._run)

    def started(self, index: int) -> list[int]:
        return [
            int(pid)
            for number, pid in (line.split() for line in self.starts.read_text().splitlines())
            if int(number) == index
        ]

    def all_reporting(self) -> bool:
        return all(slot.reported_at is not None and slot.pid is not None for slot in self.parent.fleet.slots)

    def signal(self, times: int = 1) -> None:
        for _ in range(times):
            self.parent._on_signal(signal.SIGTERM)

    def status(self) -> int:
        return self.greenlet.get(timeout=30)


def test_a_stop_reaches_every_worker_and_the_parent_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, {1: ["serve"], 2: ["serve"], 3: ["serve"]}, 3, monkeypatch)
    wait_for(run.all_reporting)
    assert run.parent.fleet.not_ready() == []
    run.signal()
    assert run.status() == ExitStatus.OK
    assert [len(run.started(index)) for index in (1, 2, 3)] == [1, 1, 1]
    assert all(slot.pid is None for slot in run.parent.fleet.slots), "every worker has exited"


def test_a_worker_that_ends_is_started_again_and_its_counts_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(tmp_path, {1: ["exit:4", "exit:1", "serve"], 2: ["serve"]}, 2, monkeypatch)
    wait_for(run.all_reporting)
    assert len(run.started(1)) == 3 and len(run.started(2)) == 1
    counts = run.parent.fleet.snapshot()
    assert counts["service"]["worker_restarts"] == 2
    assert counts["service"]["workers"] == 2
    assert counts["entries"][0]["received"] == 20  # each running worker reports 10
    victim = run.parent.fleet.slots[1].process
    assert victim is not None
    victim.kill()  # SIGKILL: its last report is kept, and it is started again
    wait_for(lambda: len(run.started(2)) == 2 and run.all_reporting())
    assert run.parent.fleet.snapshot()["entries"][0]["received"] == 30
    run.signal()
    assert run.status() == ExitStatus.OK


@pytest.mark.parametrize("status", [ExitStatus.CONFIG, ExitStatus.BROKER])
def test_a_worker_ending_with_a_config_or_refusal_status_stops_the_service_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    run = Run(tmp_path, {1: ["serve"], 2: [f"exit:{status}"]}, 2, monkeypatch)
    assert run.status() == status
    assert len(run.started(2)) == 1, "never started again"
    assert run.parent.fleet.slots[0].pid is None, "the other worker was stopped too"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(st.sampled_from(["exit:0", "exit:1", "exit:4", "exit:9", "exit:2", "exit:3"]), max_size=3),
    second=st.lists(st.sampled_from(["exit:0", "exit:4", "exit:2", "exit:3"]), max_size=2),
)
def test_any_sequence_of_ends_restarts_or_stops_as_the_statuses_say(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, first: list[str], second: list[str]
) -> None:
    """Workers that end with anything but 2 or 3 come back; the first 2 or 3 stops the service with it."""
    run = Run(tmp_path_factory.mktemp("run"), {1: [*first, "serve"], 2: [*second, "serve"]}, 2, monkeypatch)
    fatal = [step for steps in (first, second) for step in steps if step in ("exit:2", "exit:3")]
    if not fatal:
        wait_for(run.all_reporting)
        assert len(run.started(1)) == len(first) + 1 and len(run.started(2)) == len(second) + 1
        run.signal()
        assert run.status() == ExitStatus.OK
    else:
        status = run.status()
        assert status in (2, 3) and f"exit:{status}" in fatal
        for index, steps in ((1, first), (2, second)):
            ends = [step for step in steps if step in ("exit:2", "exit:3")]
            if ends:  # a worker is never started again after a 2 or a 3
                assert len(run.started(index)) <= steps.index(ends[0]) + 1


def test_a_second_signal_stops_the_workers_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, {1: ["serve"], 2: ["serve"]}, 2, monkeypatch)
    wait_for(run.all_reporting)
    for slot in run.parent.fleet.slots:  # they will not drain: only `now` ends them
        slot.request = lambda line, slot=slot: type(slot).request(slot, line) if line == b"now" else None  # type: ignore[method-assign]
    run.signal()
    gevent.sleep(0.2)
    assert not run.greenlet.dead
    run.signal()
    assert run.status() == ExitStatus.KILLED


def test_workers_that_do_not_stop_are_killed_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parent.deadlines, "parent_deadline", lambda shutdown_timeout: 0.5)
    run = Run(tmp_path, {1: ["ignore"], 2: ["serve"]}, 2, monkeypatch)
    wait_for(run.all_reporting)
    run.signal()
    assert run.status() == ExitStatus.KILLED
    assert all(slot.pid is None for slot in run.parent.fleet.slots)


def test_readiness_and_liveness_name_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "STALE", 0.5)
    run = Run(tmp_path, {1: ["serve"], 2: ["unready"], 3: ["silent"]}, 3, monkeypatch)
    wait_for(run.all_reporting)
    wait_for(lambda: run.parent.fleet.not_alive() != [])
    pids = [slot.pid for slot in run.parent.fleet.slots]
    not_ready = run.parent.fleet.not_ready()
    assert not any(problem.startswith("worker 1 ") for problem in not_ready)
    assert f"worker 2 (pid {pids[1]}): consumer x on queue 'q' holds no live consumer" in not_ready
    assert any(problem.startswith(f"worker 3 (pid {pids[2]}) has not reported for") for problem in not_ready)
    not_alive = run.parent.fleet.not_alive()
    assert len(not_alive) == 1 and not_alive[0].startswith(f"worker 3 (pid {pids[2]}) has not reported for")
    info = run.parent.fleet.info()
    assert [worker["ready"] for worker in info["workers"]] == [True, False, False]
    assert info["processes"] == 3
    monkeypatch.setattr(parent.deadlines, "parent_deadline", lambda shutdown_timeout: 1.0)
    run.signal()
    assert run.status() == ExitStatus.KILLED  # the silent one had to be killed
