"""The fault-injection suite: every scenario accounts for every message, and lost must be 0.

Each scenario records one Summary (sent, processed, duplicates, parked, still queued, lost,
recovery seconds). At the end of the run the summaries are printed and written to
build/reliability.json; `python scripts/reliability_page.py` updates the table of
docs/reliability.md from it. The broker is left running, even when a scenario fails half-way
through a restart.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import _broker_answers, broker, project, services, vhost  # noqa: F401 - fixtures

# Where the run's figures go; scripts/reliability_page.py copies them into docs/reliability.md.
RESULTS = ROOT / "build" / "reliability.json"
# One run of the suite in several pytest processes (scripts/test sets it for both its phases;
# pytest-xdist's workers share their controller's testrunuid): their rows go into one file.
RUN_VARIABLE = "DISPATCHER_TEST_RUN"
_RESULTS: list[Summary] = []


@dataclass
class Summary:
    number: str
    scenario: str
    sent: int
    processed: int
    duplicates: int
    parked: int
    queued: int
    lost: int
    recovery: float | None
    note: str = ""

    def line(self) -> str:
        recovery = f"{self.recovery:.1f}s" if self.recovery is not None else "-"
        return (
            f"[{self.number}] {self.scenario}: sent={self.sent} processed={self.processed} "
            f"duplicates={self.duplicates} parked={self.parked} queued={self.queued} lost={self.lost} "
            f"recovery={recovery}"
        )

    def row(self) -> str:
        recovery = f"{self.recovery:.1f}" if self.recovery is not None else "-"
        cells = [self.number, self.scenario, self.sent, self.processed, self.duplicates, self.parked, self.queued]
        cells += [self.lost, recovery, self.note]
        return "| " + " | ".join(str(cell) for cell in cells) + " |"


def account(
    number: str,
    scenario: str,
    sent: list[str],
    processed: list[str],
    *,
    parked: list[str] = (),  # type: ignore[assignment]
    queued: list[str] = (),  # type: ignore[assignment]
    recovery: float | None = None,
    note: str = "",
) -> Summary:
    """Where every id went; an id is lost if it was neither processed, parked, nor still queued."""
    expected = set(sent)
    done = set(processed) & expected
    found = done | (set(parked) & expected) | (set(queued) & expected)
    summary = Summary(
        number=number,
        scenario=scenario,
        sent=len(expected),
        processed=len(done),
        duplicates=len(processed) - len(set(processed)),
        parked=len(set(parked) & expected),
        queued=len(set(queued) & expected - done),
        lost=len(expected - found),
        recovery=recovery,
        note=note,
    )
    _RESULTS.append(summary)
    return summary


@pytest.fixture(scope="session", autouse=True)
def broker_stays_up() -> Iterator[None]:
    """Whatever a scenario did to the broker, it runs again afterwards."""
    yield
    if _broker_answers():
        return
    subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120, check=False)
    subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120, check=False)
    if not _broker_answers():
        subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, timeout=60, check=False)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120, check=False)
    for _ in range(60):
        if _broker_answers():
            return
        time.sleep(1)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _RESULTS:
        return
    terminalreporter.section("reliability: where every message went")
    for summary in _RESULTS:
        terminalreporter.write_line(summary.line())


def pytest_sessionfinish(session, exitstatus) -> None:  # type: ignore[no-untyped-def]
    """The run's figures go to build/reliability.json; `python scripts/reliability_page.py` puts
    them into docs/reliability.md, deliberately, so that a test run never rewrites a tracked file."""
    if not _RESULTS:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Several pytest processes of one run (parallel workers, then the scenarios that restart the
    # system broker alone) each add their rows; a file from another run is replaced.
    run = os.environ.get(RUN_VARIABLE) or getattr(session.config, "workerinput", {}).get("testrunuid")
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = {}
        if run is not None and RESULTS.exists():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                earlier = json.loads(RESULTS.read_text(encoding="utf-8"))
                rows = earlier["rows"] if earlier.get("run") == run else {}
        document = {
            "run": run,
            "date": datetime.date.today().isoformat(),
            "python": platform.python_version(),
            "rabbitmq": _rabbitmq_version(),
            "rows": rows | {summary.number: summary.row() for summary in _RESULTS},
        }
        RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _rabbitmq_version() -> str:
    result = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "?"
