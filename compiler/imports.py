"""Import checks: runs the probe in a child process and turns its findings into diagnostics.

Owns where import problems are reported (on the `consumer:` or `startup_handler:` value), the
time limit, and recovering from a probe that hangs or dies. User code never runs in the
compiler's own process, so a module that patches, exits or blocks cannot take the build with it.
The contract checks themselves live in probe.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import ConfigPath, Diagnostic, error
from .model import Parts
from .refs import ImportRef
from .source import SourceDocument

DEFAULT_TIMEOUT = 60.0


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
    parts: Parts,
    document: SourceDocument,
    *,
    roots: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
) -> ImportReport:
    """Import every referenced module once and check each reference against the contract."""
    report = ImportReport()
    targets = [Target(entry.path, entry.spec, "consumer") for entry in parts.consumer_refs]
    if parts.startup_handler is not None:
        targets.append(Target(parts.startup_handler.path, parts.startup_handler.spec, "startup_handler"))
    importable = []
    for target in targets:
        keyword = target.ref.keyword_part()
        if keyword:
            report.diagnostics.append(
                error(
                    "E106",
                    f"`{keyword}` is a Python keyword, so no import statement can name {target.ref}",
                    document.value_span(target.path),
                    target.path,
                    hints=("rename the module or the name",),
                )
            )
        else:
            importable.append(target)
    if importable:
        outcome = _run_probe(importable, roots, timeout)
        report.packages = outcome.get("packages", {})
        report.diagnostics += _diagnose(importable, outcome, document, timeout)
    return report


def _run_probe(targets: list[Target], roots: Sequence[str], timeout: float) -> dict[str, Any]:
    request = {
        "roots": [os.path.abspath(root) for root in roots],
        "targets": [{"ref": str(target.ref), "role": target.role} for target in {t.key: t for t in targets}.values()],
    }
    env = {**os.environ, "DISPATCHER_BUILD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", encoding="utf-8") as results:
        command = [sys.executable, "-m", "amqp_dispatcher.compiler.probe", results.name]
        try:
            completed = subprocess.run(
                command,
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"timeout": True, **_progress(results.read())}
        outcome = _progress(results.read())
        if "findings" not in outcome:
            outcome["died"] = completed.returncode
            outcome["stderr"] = completed.stderr
        return outcome


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


def _diagnose(
    targets: list[Target], outcome: dict[str, Any], document: SourceDocument, timeout: float
) -> list[Diagnostic]:
    if "findings" not in outcome:
        return [_probe_failure(targets, outcome, document, timeout)]
    found: list[Diagnostic] = []
    reported_modules: set[str] = set()
    for target in targets:
        finding = outcome["findings"][target.key]
        if finding.get("ok"):
            continue
        notes = tuple(finding["notes"])
        hints = tuple(finding["hints"])
        if finding["code"] in ("E201", "E202"):
            if target.ref.module in reported_modules:
                notes = ()
                hints = ("the traceback and what to do are at the first use of this module, above",)
            reported_modules.add(target.ref.module)
        found.append(
            error(
                finding["code"],
                finding["message"],
                document.value_span(target.path),
                target.path,
                hints=hints,
                notes=notes,
            )
        )
    return found


def _probe_failure(
    targets: list[Target], outcome: dict[str, Any], document: SourceDocument, timeout: float
) -> Diagnostic:
    module = outcome.get("last_module")
    target = next((t for t in targets if t.ref.module == module), targets[0])
    span = document.value_span(target.path)
    if outcome.get("timeout"):
        return error(
            "E208",
            f"importing {module} did not finish within {timeout:g} s",
            span,
            target.path,
            hints=(
                "a module should not connect or wait at import time; "
                "it can skip such work when DISPATCHER_BUILD=1 is set",
                "or allow more time with --import-timeout SECONDS",
            ),
        )
    stderr = (outcome.get("stderr") or "").strip()
    notes = (stderr.splitlines()[-1],) if stderr else ()
    return error(
        "E202",
        f"importing {module} ended the import process (exit status {outcome.get('died')})",
        span,
        target.path,
        hints=("a module must not exit the interpreter when imported",),
        notes=notes,
    )
