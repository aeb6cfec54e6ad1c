"""Every diagnostic the compiler can give, with its exact text and position.

Each folder under golden/ holds a config.yml, optional extra arguments (`args`, one per line)
and `expected.txt`: the exit status and everything printed. Consumer modules come from
golden/_modules. Run with UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate
change, then read the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from amqp_dispatcher.compiler import cli

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir() and not path.name.startswith("_"))


def run_case(case: Path, output: Path) -> str:
    extra = (case / "args").read_text().split() if (case / "args").exists() else []
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(["config.yml", "-o", str(output), "--path", "../_modules", *extra], stdout=out, stderr=err)
    text = f"# exit status {status}\n# stdout:\n{out.getvalue()}# stderr:\n{err.getvalue()}"
    return text.replace(str(output), "<output>")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_output_matches_golden_file(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    actual = run_case(case, tmp_path / "service")
    expected_file = case / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no expected.txt for {case.name}: run with UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_code_has_a_golden_case() -> None:
    from amqp_dispatcher.compiler.diagnostics import CODES

    covered = {case.name.split("_")[0].upper() for case in CASES}
    missing = sorted(code for code in CODES if code not in covered and code != "E199")
    assert not missing, f"codes without a golden case: {missing}"


def test_a_failed_build_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for case in CASES:
        expected = (case / "expected.txt").read_text(encoding="utf-8")
        if expected.startswith("# exit status 0"):
            continue
        monkeypatch.chdir(case)
        run_case(case, tmp_path / "service")
        assert not (tmp_path / "service").exists(), case.name
