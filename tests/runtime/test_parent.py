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
from typing import Any

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime import fleet, parent, snapshot
from amqp_dispatcher.runtime.errors import ExitStatus
from amqp_dispatcher.runtime.fleet import Fleet, Slot
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

    def __init__(
        self, folder: Path, plan: dict[int, list[str]], count: int, monkeypatch: pytest.MonkeyPatch, **settings: Any
    ) -> None:
        self.starts = folder / "starts"
        self.starts.write_text("")
        monkeypatch.setenv("FAKE_PLAN", json.dumps({str(index): steps for index, steps in plan.items()}))
        monkeypatch.setenv("FAKE_LOG", str(self.starts))
        monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2] / "src"))
        described = service((ENTRY,), (queue("q"),), **settings)
        self.parent = Parent(described, count, [sys.executable, FAKE], http=None, generator=None)
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
    assert run.parent.fleet.not_ready()[0] == "the service is stopping"
    assert "worker 1 is not running; it has stopped" in run.parent.fleet.not_ready()
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
    monkeypatch.setattr(parent.deadlines, "parent_deadline", lambda shutdown_timeout: 3600.0)  # only `now` ends it
    waits = []
    real_wait = gevent.wait
    monkeypatch.setattr(gevent, "wait", lambda *args, **kwargs: waits.append(1) or real_wait(*args, **kwargs))
    run = Run(tmp_path, {1: ["serve"], 2: ["serve"]}, 2, monkeypatch)
    wait_for(run.all_reporting)
    for slot in run.parent.fleet.slots:  # they will not drain: only `now` ends them
        original = slot.request
        slot.request = lambda line, original=original: original(line) if line == b"now" else None  # type: ignore[method-assign]
    run.signal()
    gevent.sleep(0.2)
    assert not run.greenlet.dead
    run.signal()
    assert run.status() == ExitStatus.KILLED
    assert [slot.final_status for slot in run.parent.fleet.slots] == [1, 1], "they stopped on `now`, not killed"
    assert len(waits) < 20, "waiting for the workers after `now` must not spin"


def test_the_first_signal_drains_even_when_a_workers_status_began_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    described = service((ENTRY,), (queue("q"),))
    stopped = Parent(described, 2, [sys.executable, FAKE], http=None, generator=None)
    stopped._stop.set()  # as a worker's 2 or 3 sets it
    stopped._on_signal(signal.SIGTERM)
    assert not stopped._forced.is_set(), "one signal never stops the workers at once"
    stopped._on_signal(signal.SIGTERM)
    assert stopped._forced.is_set()


def test_a_command_that_cannot_run_stops_the_service_with_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, {1: ["serve"]}, 1, monkeypatch)
    run.greenlet.kill()
    run.parent.command = [str(tmp_path / "no-such-python")]
    again = gevent.spawn(run.parent._run)
    assert again.get(timeout=30) == ExitStatus.CONFIG


def test_a_fork_that_fails_for_now_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real = parent.gevent.subprocess.Popen
    failures = [OSError(errno.EAGAIN, "Resource temporarily unavailable")]

    def popen(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(parent.gevent.subprocess, "Popen", popen)
    run = Run(tmp_path, {1: ["serve"]}, 1, monkeypatch)
    wait_for(run.all_reporting)
    assert run.parent.fleet.slots[0].restarts == 1
    run.signal()
    assert run.status() == ExitStatus.OK


def test_a_bug_while_keeping_a_worker_stops_the_service_with_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(slot: Any) -> None:
        raise RuntimeError("a bug")

    run = Run(tmp_path, {1: ["exit:4", "serve"], 2: ["serve"]}, 2, monkeypatch)
    monkeypatch.setattr(run.parent.fleet, "retire", broken)
    assert run.status() == ExitStatus.INTERNAL
    assert all(slot.pid is None for slot in run.parent.fleet.slots)


def test_workers_that_do_not_stop_are_killed_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parent.deadlines, "parent_deadline", lambda shutdown_timeout: 0.5)
    run = Run(tmp_path, {1: ["ignore"], 2: ["serve"]}, 2, monkeypatch)
    wait_for(run.all_reporting)
    run.signal()
    assert run.status() == ExitStatus.KILLED
    assert all(slot.pid is None for slot in run.parent.fleet.slots)


def test_readiness_and_liveness_name_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "STALE", 0.5)
    plan = {1: ["serve"], 2: ["unready"], 3: ["silent"], 4: ["hang"]}
    run = Run(tmp_path, plan, 4, monkeypatch, startup_timeout=0.2)
    wait_for(lambda: all(slot.reported_at is not None for slot in run.parent.fleet.slots[:3]))
    wait_for(lambda: len(run.parent.fleet.not_alive()) == 2)
    pids = [slot.pid for slot in run.parent.fleet.slots]
    not_ready = run.parent.fleet.not_ready()
    assert not any(problem.startswith("worker 1 ") for problem in not_ready)
    assert f"worker 2 (pid {pids[1]}): consumer x on queue 'q' holds no live consumer" in not_ready
    assert any(problem.startswith(f"worker 3 (pid {pids[2]}) has not reported for") for problem in not_ready)
    not_alive = run.parent.fleet.not_alive()
    assert not_alive[0].startswith(f"worker 3 (pid {pids[2]}) has not reported for")
    assert not_alive[1].startswith(f"worker 4 (pid {pids[3]}) has not reported in the")
    assert "startup handler may hang" in not_alive[1]
    info = run.parent.fleet.info()
    assert [worker["ready"] for worker in info["workers"]] == [True, False, False, False]
    assert info["processes"] == 4
    monkeypatch.setattr(parent.deadlines, "parent_deadline", lambda shutdown_timeout: 1.0)
    run.signal()
    assert run.status() == ExitStatus.KILLED  # the silent one had to be killed


# What the parent makes of its workers' reports


class _Process:
    """A worker's process as the fleet sees it: running until it has a return code."""

    pid = 4242
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def _report(received: int) -> snapshot.Snapshot:
    taken = snapshot.empty(1)
    taken["entries"][0]["received"] = received
    taken["entries"][0]["in_flight"] = 1
    taken["service"]["workers"] = 1
    return taken


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["report", "end", "retire", "start"]), max_size=30), st.data())
def test_no_counter_of_the_whole_service_ever_goes_down(steps: list[str], data: st.DataObject) -> None:
    """Whatever order reports, ends, retirements and new starts come in, as the parent sees them."""
    fleet = Fleet(service((ENTRY,), (queue("q"),)), [Slot(1)], None)
    slot = fleet.slots[0]
    slot.process, counted, shown = _Process(), 0, 0  # type: ignore[assignment]
    for step in steps:
        if step == "report" and slot.process is not None and slot.process.poll() is None:
            counted += data.draw(st.integers(0, 50))
            slot.report = _report(counted)
        elif step == "end" and slot.process is not None:
            slot.process.returncode = 1  # type: ignore[attr-defined]
        elif step == "retire" and slot.process is not None and slot.process.poll() is not None:
            fleet.retire(slot)
            slot.process = None
        elif step == "start" and slot.process is None:
            slot.process, counted = _Process(), 0  # type: ignore[assignment]
        total = fleet.snapshot()["entries"][0]["received"]
        assert total >= shown, f"received went from {shown} to {total} after {step}"
        shown = total


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        json_values,
        st.builds(lambda extra: {**_report(1), **extra}, st.dictionaries(st.text(max_size=5), json_values, max_size=2)),
    )
)
def test_a_report_of_another_shape_is_ignored_and_metrics_still_answer(counts: object) -> None:
    """A worker of another build (a runtime upgraded under a running parent) cannot break /metrics."""
    import json

    from amqp_dispatcher.runtime.metrics import Exposition

    fleet = Fleet(service((ENTRY,), (queue("q"),)), [Slot(1)], None)
    slot = fleet.slots[0]
    slot.process = _Process()  # type: ignore[assignment]
    slot.report = _report(7)
    fleet._take(slot, json.dumps({"snapshot": counts, "not_ready": []}).encode())
    if not snapshot.conforms(counts, 1):
        assert slot.report == _report(7), "kept the last report it could read"
    body, _ = Exposition(fleet.service, fleet.snapshot).render()
    assert b"amqp_dispatcher_messages_received_total" in body
    fleet.retire(slot)


def test_the_final_report_arrives_whole_even_when_reports_are_large() -> None:
    """A report larger than the socket's buffer takes several writes; finishing must not cut one."""
    import json
    import socket as plain

    from amqp_dispatcher.runtime.worker import ParentLink, WorkerIdentity

    big = snapshot.empty(2000)

    class Counts:
        calls = 0

        def snapshot(self) -> snapshot.Snapshot:
            Counts.calls += 1
            big["entries"][0]["received"] = Counts.calls
            return big

        def not_ready(self) -> list[str]:
            return []

    mine, theirs = plain.socketpair()
    link = ParentLink(WorkerIdentity(1, 1, theirs.detach()), Counts(), lambda forced: None)  # type: ignore[arg-type]
    link.start()
    received = bytearray()
    reader = gevent.get_hub().threadpool.spawn(_read_all, mine, received)
    gevent.sleep(0.05)  # the first report is on its way, waiting for room in the buffer
    link.finish()
    reader.get(timeout=30)
    lines = bytes(received).split(b"\n")
    assert lines[-1] == b"", "ends with a whole line"
    reports = [json.loads(line) for line in lines[:-1]]
    assert reports[-1]["snapshot"]["entries"][0]["received"] == Counts.calls, "the last one is the final report"


def _read_all(connection: Any, into: bytearray) -> None:
    import time

    time.sleep(0.3)  # a parent busy elsewhere: the worker's report fills the socket's buffer and waits
    while chunk := connection.recv(65536):
        into.extend(chunk)
        time.sleep(0.001)  # a parent slower than its worker
    connection.close()
