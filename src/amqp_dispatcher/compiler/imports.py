"""Import checks: runs the probe in a child process and turns its findings into diagnostics.

Owns the E2xx codes (as the probe finds them, with "did you mean" for a name it did not find),
E106 for a reference that names a Python keyword, where import problems point (the `consumer:`
or `startup_handler:` value), the time and memory limits, and containing the probe: it runs in
a process group of its own, which is killed when the probe ends or times out, so that nothing a
module started at import outlives the build. (A daemon that leaves the group with setsid
escapes this; nothing short of a container can hold it.) The build waits for the probe process
itself, never for its output pipes, which a child the module started could hold open. User
code never runs in the compiler's own process, so a module that patches, exits or blocks
cannot take the build with it. The contract checks themselves live in probe.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import ConfigPath, Diagnostic, at_value, closest, did_you_mean, error, shorten
from .model import Model
from .refs import ImportRef

DEFAULT_TIMEOUT = 60.0
# Far above what importing a service's modules takes, low enough that a runaway import fails
# with a MemoryError instead of swapping the CI machine to a halt.
DEFAULT_MEMORY_MB = 4096
_STDERR_TAIL = 64 * 1024  # bytes of the probe's stderr read back: the last line is what we show


@dataclass(frozen=True, slots=True)
class Target:
    path: ConfigPath
    ref: ImportRef
    role: str  # "consumer" or "startup_handler"

    @property
    def key(self) -> str:
        return f"{self.role} {self.ref}"


@dataclass(slots=True)
class ImportReport:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)


def check(
    model: Model,
    *,
    roots: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> ImportReport:
    """Import every referenced module once and check each reference against the contract."""
    report = ImportReport()
    targets = [Target(entry.path, entry.spec, "consumer") for entry in model.consumer_refs]
    if model.startup_handler is not None:
        targets.append(Target(model.startup_handler.path, model.startup_handler.spec, "startup_handler"))
    importable = []
    for target in targets:
        keyword = target.ref.keyword_part()
        if keyword:
            report.diagnostics.append(
                error(
                    "E106",
                    f"`{keyword}` is a Python keyword, so no import statement can name {shorten(str(target.ref))}",
                    at_value(target.path),
                    hints=("rename the module or the name",),
                )
            )
        else:
            importable.append(target)
    if importable:
        outcome = _run_probe(importable, roots, timeout, memory_mb)
        report.packages = outcome.get("packages", {})
        report.diagnostics += _diagnose(importable, outcome, timeout)
    return report


def _run_probe(targets: list[Target], roots: Sequence[str], timeout: float, memory_mb: int) -> dict[str, Any]:
    request = {
        "roots": [os.path.abspath(root) for root in roots],
        "targets": [{"ref": str(target.ref), "role": target.role} for target in {t.key: t for t in targets}.values()],
        "memory_mb": memory_mb,
    }
    env = {**os.environ, "DISPATCHER_BUILD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="dispatcher-build-") as folder:
        files = Path(folder)
        (files / "request.json").write_text(json.dumps(request), encoding="utf-8")
        (files / "results.jsonl").touch()  # a probe that never starts still leaves a report to read
        command = [sys.executable, "-c", _LAUNCH, folder]
        # Files, not pipes: a child a module starts inherits them, and waiting for the end of a
        # pipe it holds would make every build wait out the timeout.
        with (files / "stderr.txt").open("wb") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                start_new_session=True,  # its own process group, to kill with all it started
            )
            try:
                finished = _wait_for_exit(process.pid, timeout)
            finally:
                _kill_group(process.pid)  # also on KeyboardInterrupt: nothing of the build lives on
                process.wait()
        outcome = _progress((files / "results.jsonl").read_text(encoding="utf-8"))
        if not finished:
            return {"timeout": True, **outcome}
        if "findings" not in outcome:
            outcome["died"] = process.returncode
            outcome["stderr"] = _tail(files / "stderr.txt")
        return outcome


# Runs the probe without the working directory first on sys.path (as `python -m` would put it):
# a user module named json or os there would shadow the standard library the probe needs
# before it starts. The probe adds the import roots itself, after its own imports.
_LAUNCH = (
    "import sys; del sys.path[0]; import runpy; runpy.run_module('amqp_dispatcher.compiler.probe', run_name='__main__')"
)


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether the process exited within the timeout. It is left unreaped (a zombie), so that
    its process id, and with it the id of its process group, cannot be reused before the
    group is killed."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not _has_exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)  # as subprocess polls: quick for a fast probe, cheap for a slow one
    return True


def _has_exited(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # a host that ignores SIGCHLD has it reaped by the kernel already
        return True


def _kill_group(pgid: int) -> None:
    # The group leader is unreaped, so the group exists; the suppress is for a caller that reaped it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path) -> str:
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - _STDERR_TAIL))
        return file.read().decode("utf-8", errors="replace")


def _progress(text: str) -> dict[str, Any]:
    """Fold the probe's JSON lines: the last module it started on, and its final report."""
    outcome: dict[str, Any] = {}
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut short when the probe died
            continue
        if event.get("event") == "importing":
            outcome["last_module"] = event["module"]
        elif event.get("event") == "done":
            outcome.update(findings=event["findings"], packages=event["packages"])
    return outcome


def _diagnose(targets: list[Target], outcome: dict[str, Any], timeout: float) -> list[Diagnostic]:
    if "findings" not in outcome:
        return [_probe_failure(targets, outcome, timeout)]
    found: list[Diagnostic] = []
    reported_modules: set[str] = set()
    for target in targets:
        finding = outcome["findings"][target.key]
        if finding.get("ok"):
            continue
        notes = tuple(finding["notes"])
        hints = _guessed(finding.get("guess")) + tuple(finding["hints"])
        if finding["code"] in ("E201", "E202"):
            if target.ref.module in reported_modules:
                notes = ()
                hints = ("the traceback and what to do are at the first use of this module, above",)
            reported_modules.add(target.ref.module)
        found.append(
            error(
                finding["code"],
                finding["message"],
                at_value(target.path),
                hints=hints,
                notes=notes,
            )
        )
    return found


def _guessed(guess: dict[str, Any] | None) -> tuple[str, ...]:
    """The hint for a name the probe did not find, when one it found is close."""
    close = closest(guess["word"], guess["among"]) if guess else None
    if guess is None or close is None:
        return ()
    within = guess["within"]
    if guess["kind"] == "module":
        return (did_you_mean(shorten(".".join(filter(None, [within, close])))),)
    return (did_you_mean(f"{shorten(within)}:{shorten(close)}"),)


def _probe_failure(targets: list[Target], outcome: dict[str, Any], timeout: float) -> Diagnostic:
    module = outcome.get("last_module")
    target = next((t for t in targets if t.ref.module == module), targets[0])
    anchor = at_value(target.path)
    shown = shorten(str(module))
    if outcome.get("timeout"):
        return error(
            "E208",
            f"importing {shown} did not finish within {timeout:g} s",
            anchor,
            target.path,
            hints=(
                "a module should not connect or wait at import time; "
                "it can skip such work when DISPATCHER_BUILD=1 is set",
                "or allow more time with --import-timeout SECONDS",
            ),
        )
    stderr = (outcome.get("stderr") or "").strip()
    notes = (shorten(stderr.splitlines()[-1], 200),) if stderr else ()
    status = outcome.get("died")
    if module is None:
        return error(
            "E202",
            f"the import process could not start (exit status {status})",
            anchor,
            target.path,
            hints=("its last line of error output is below; check the Python that runs dispatcher-build",),
            notes=notes,
        )
    if isinstance(status, int) and status < 0:
        ended = f"killed the import process ({_signal_name(-status)})"
        hints = (
            "a module must not kill the interpreter when imported; a process that runs out of memory "
            "can also be killed: --import-memory MB sets the limit that turns that into a MemoryError",
        )
    else:
        ended = f"ended the import process (exit status {status})"
        hints = ("a module must not exit the interpreter when imported",)
    return error("E202", f"importing {shown} {ended}", anchor, target.path, hints=hints, notes=notes)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # pragma: no cover - a real-time signal
        return f"signal {number}"
