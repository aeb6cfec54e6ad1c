"""The generated package: frozen, readable, deterministic, formatted, and safe to import."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amqp_dispatcher.compiler import cli
from amqp_dispatcher.runtime import Binding, ConsumerEntry, Exchange, Queue, Requeue, Retry, Service

HERE = Path(__file__).parent / "artifact"
RUFF = [sys.executable, "-m", "ruff"]


def build(config: Path, output: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "amqp_dispatcher.compiler.cli", str(config), "-o", str(output)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the artifact project, as a user would have it."""
    target = tmp_path / "project"
    shutil.copytree(HERE, target)
    return target


def tree(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def test_generated_init_matches_the_golden_module(project: Path) -> None:
    result = build(project / "config.yml", project / "service", project)
    assert result.returncode == 0, result.stderr
    expected = HERE.parent / "artifact_expected_init.py.txt"
    actual = (project / "service" / "__init__.py").read_text()
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(actual)
    assert actual == expected.read_text()


def test_two_builds_are_byte_identical_whatever_the_environment(project: Path, tmp_path: Path) -> None:
    first = build(project / "config.yml", tmp_path / "one" / "service", project)
    other_env = {**os.environ, "TZ": "Asia/Kolkata", "LANG": "C", "PYTHONHASHSEED": "12345"}
    copy = tmp_path / "elsewhere"
    shutil.copytree(project, copy)
    second = build(copy / "config.yml", tmp_path / "two" / "service", copy, env=other_env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert tree(tmp_path / "one" / "service") == tree(tmp_path / "two" / "service")


def test_generated_code_passes_ruff_check_and_format(project: Path) -> None:
    for monkey_patch in ("false", "true"):
        config = project / "config.yml"
        config.write_text(
            config.read_text()
            .replace("monkey_patch: false", f"monkey_patch: {monkey_patch}")
            .replace("monkey_patch: true", f"monkey_patch: {monkey_patch}")
        )
        output = project / f"service_{monkey_patch}"
        assert build(config, output, project).returncode == 0
        check = subprocess.run(
            [*RUFF, "check", "--isolated", "--no-cache", str(output)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout
        fmt = subprocess.run(
            [*RUFF, "format", "--isolated", "--check", "--diff", str(output)], capture_output=True, text=True
        )
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_monkey_patch_comes_before_every_other_import(project: Path) -> None:
    config = project / "config.yml"
    config.write_text(config.read_text().replace("monkey_patch: false", "monkey_patch: true"))
    assert build(config, project / "service", project).returncode == 0
    for name in ("__init__.py", "__main__.py"):
        code = [
            line
            for line in (project / "service" / name).read_text().splitlines()
            if line and not line.startswith(("#", '"'))
        ]
        assert code[:2] == ["from gevent import monkey", "monkey.patch_all()"], name


def test_without_monkey_patch_gevent_is_never_patched(project: Path) -> None:
    assert build(project / "config.yml", project / "service", project).returncode == 0
    text = (project / "service" / "__init__.py").read_text() + (project / "service" / "__main__.py").read_text()
    assert "patch_all" not in text and "import monkey" not in text


def test_the_imported_table_holds_every_effective_value(project: Path) -> None:
    assert build(project / "config.yml", project / "service", project).returncode == 0
    probe = """
import consumers
import service

s = service.SERVICE
print(repr((s.name, s.heartbeat, s.shutdown_timeout, s.monkey_patch, s.startup_handler is consumers.startup)))
c = s.consumers
print(repr([(x.consumer.__module__, x.consumer.__qualname__, x.queue, x.consumer_count, x.prefetch_count) for x in c]))
b = [[(b.exchange, b.routing_key, dict(b.arguments)) for b in q.bindings] for q in s.queues]
print(repr([(q.name, dict(q.arguments), bindings) for q, bindings in zip(s.queues, b)]))
print(repr([(e.name, e.type, e.durable, dict(e.arguments)) for e in s.exchanges]))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert eval(lines[0]) == ("artifact", 20, 30.0, False, True)
    hostile = 'it\'s "quoted" \\ and \\n, not a line break é 🐇'
    assert eval(lines[1]) == [
        ("consumers", "Consumer", "orders", 2, 20),
        ("other.consumers", "Consumer", "orders", 1, 1),
        ("consumers", "Service", hostile, 1, 1),
    ]
    assert eval(lines[2]) == [
        (
            "orders",
            {
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": "orders.dead",
                "x-max-priority": 5,
                "x-single-active-consumer": True,
            },
            [("events", "", {"kind": ["order", "refund"], "nested": {"depth": 2}, "x-match": "all"})],
        ),
        (hostile, {}, []),
        ("orders.dead", {}, []),
    ]
    assert eval(lines[3]) == [
        ("events", "headers", True, {"alternate-exchange": "unrouted"}),
        ("unrouted", "fanout", True, {}),
    ]


@pytest.mark.parametrize("spec_class", [Binding, Exchange, Queue, Retry, ConsumerEntry, Service])
def test_spec_objects_are_frozen(spec_class: type) -> None:
    """A generated SERVICE cannot be changed after import, down to the argument maps."""
    values = {field.name: _sample(field.type) for field in dataclasses.fields(spec_class)}
    spec = spec_class(**values)
    first = dataclasses.fields(spec_class)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(spec, first, values[first])
    for name, value in values.items():
        if isinstance(value, dict):
            with pytest.raises(TypeError):
                getattr(spec, name)["x"] = 2


def _sample(annotation: str) -> object:
    """A value of the field's type, enough to build the object."""
    if "Mapping" in annotation:
        return {"x": 1}
    if annotation.startswith("tuple"):
        return ()
    if annotation.startswith(("int", "float")):
        return 1
    if annotation.startswith("bool"):
        return True
    if annotation == "ErrorPolicy":
        return Requeue()
    return None if "None" in annotation else "text"


def test_check_reports_a_fresh_package_as_current_and_an_edited_one_as_stale(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, output = str(project / "config.yml"), str(project / "service")
    monkeypatch.chdir(project)
    assert cli.run([config, "-o", output]) == 0
    assert cli.run([config, "-o", output, "--check"]) == 0
    init = project / "service" / "__init__.py"
    init.write_text(init.read_text().replace("prefetch_count=20", "prefetch_count=21"))
    assert cli.run([config, "-o", output, "--check"]) == 1
    assert "prefetch_count=21" in init.read_text(), "--check must not write"
