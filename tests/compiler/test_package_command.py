"""The generated package's own command line: the interface guard, `check`, and usage.

What operators rely on: `python -m service check` answers, without a broker, whether this
environment can run the package, one line per finding and exit 0 or 2, as a container's
start-up check or a systemd ExecStartPre needs; a runtime that does not run the package's
interface says so in one line (exit 2), never with a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amqp_dispatcher.runtime.interface import INTERFACE

from .test_artifact import HERE, build


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A project with its package built, as a deployment would hold it."""
    project = tmp_path / "project"
    shutil.copytree(HERE, project)
    result = build(project / "config.yml", project / "service", project)
    assert result.returncode == 0, result.stderr
    return project


def service(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *arguments], cwd=project, capture_output=True, text=True, timeout=60
    )


def test_check_passes_on_the_package_as_built(built: Path) -> None:
    result = service(built, "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("check: ok: amqp-dispatcher ") and "files are as built" in result.stdout


def test_check_finds_a_file_edited_after_the_build(built: Path) -> None:
    init = built / "service" / "__init__.py"
    init.write_text(init.read_text().replace("prefetch_count=20", "prefetch_count=21"))
    result = service(built, "check")
    assert result.returncode == 2
    assert "check: __init__.py differs from what dispatcher-build wrote" in result.stderr


def test_check_reports_a_configured_module_that_cannot_be_imported_in_one_line(built: Path) -> None:
    (built / "consumers.py").rename(built / "moved.py")
    result = service(built, "check")
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr
        == "check: the package cannot be imported here: ModuleNotFoundError: No module named 'consumers'\n"
    )


def test_check_reports_a_missing_manifest(built: Path) -> None:
    (built / "service" / "manifest.json").unlink()
    result = service(built, "check")
    assert result.returncode == 2 and "cannot read" in result.stderr and "manifest.json" in result.stderr


def test_unknown_arguments_are_a_usage_error(built: Path) -> None:
    result = service(built, "chek")
    assert result.returncode == 2
    assert "usage: python -m service [check]" in result.stderr and "unknown arguments: chek" in result.stderr


@pytest.mark.parametrize("interface,advice", [(0, "rebuild the package"), (INTERFACE + 1, "upgrade the runtime")])
@pytest.mark.parametrize("arguments,prefix", [((), "amqp-dispatcher"), (("check",), "check")])
def test_a_runtime_refuses_a_package_generated_for_another_interface_in_one_line(
    built: Path, interface: int, advice: str, arguments: tuple[str, ...], prefix: str
) -> None:
    """What an older or newer dispatcher-build would have written, run by this runtime."""
    init = built / "service" / "__init__.py"
    guard = f"import INTERFACE_{INTERFACE}  #"
    assert guard in init.read_text(), "the guard is the package's first runtime import"
    init.write_text(init.read_text().replace(guard, f"import INTERFACE_{interface}  #"))
    result = service(built, *arguments)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{prefix}: this package was generated for runtime interface {interface},")
    assert advice in result.stderr
