"""The wheel ships schema and templates, and a production install runs without the build extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "amqp-dispatcher"
    # A copy without the developer's venv and build leftovers, as a fresh clone would be.
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".*_cache")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (found,) = dist.glob("amqp_dispatcher-*.whl")
    return found


def test_the_wheel_contains_schema_templates_and_type_markers(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "amqp_dispatcher/schema/amqp-dispatcher.schema.json",
        "amqp_dispatcher/templates/__init__.py.j2",
        "amqp_dispatcher/templates/__main__.py.j2",
        "amqp_dispatcher/compiler/py.typed",
        "amqp_dispatcher/runtime/py.typed",
        "amqp_dispatcher/compiler/probe.py",
        "amqp_dispatcher/runtime/spec.py",
    }
    assert expected <= names
    assert not any(name.startswith(("tests/", "src/", "compiler/", "runtime/")) for name in names), (
        "only under amqp_dispatcher/"
    )


def test_a_production_install_imports_a_generated_package_without_build_dependencies(
    wheel: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(Path(__file__).parent / "compiler" / "artifact", project)
    build = subprocess.run(
        [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "config.yml", "-o", "service"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    code = (
        "import sys, service\n"
        "assert service.SERVICE.name == 'artifact'\n"
        "print(sorted({'yaml', 'jsonschema', 'jinja2'} & set(sys.modules)))\n"
        "import importlib.util\n"
        "print([m for m in ('yaml', 'jsonschema', 'jinja2') if importlib.util.find_spec(m)])\n"
    )
    result = subprocess.run([str(python), "-c", code], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"], "nothing of the build side is imported, or even installed"
    # The commands that compile say, in one line, which install they need.
    commands = [
        [str(environment / "bin" / "amqp-dispatcher"), "--config", "config.yml"],
        [str(environment / "bin" / "amqp-dispatcher"), "--validate", "--config", "config.yml"],
        [str(python), "-m", "amqpdispatcher.dispatcher", "--config", "config.yml"],
        [str(environment / "bin" / "dispatcher-build"), "config.yml", "-o", "service2"],
    ]
    for command in commands:
        result = subprocess.run(command, cwd=project, capture_output=True, text=True)
        assert result.returncode == 2, (command, result.stderr)
        (line,) = result.stderr.splitlines()
        assert "pip install 'amqp-dispatcher[build]'" in line and "python -m service" in line, line
        assert "Traceback" not in result.stderr


def test_the_version_follows_the_original_line_so_that_installs_and_upgrades_pick_it(wheel: Path) -> None:
    """PyPI holds the original up to 0.11.0: a lower version would lose every resolution to it."""
    version = wheel.name.split("-")[1]
    assert tuple(int(part) for part in version.split(".")[:2]) >= (2, 0), version
