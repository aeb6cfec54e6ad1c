"""The command lines: dispatcher-build's options and exit codes, and the original's --validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amqp_dispatcher.compiler import cli
from amqp_dispatcher.runtime import VERSION
from tests.compiler.helpers import run

MODULES = Path(__file__).parent / "artifact"


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"dispatcher-build {VERSION}"


def test_help_names_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for option in (
        "-o",
        "--check",
        "--format",
        "--path",
        "--strict",
        "--import-timeout",
        "--print-schema",
        "--version",
        "--deploy",
        "--asyncapi",
        "--graph",
        "--import-memory",
    ):
        assert option in result.stdout


def test_print_schema_prints_the_shipped_schema() -> None:
    status, out, _ = run("--print-schema")
    assert status == 0
    assert json.loads(out)["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "name the config file"),
        (["config.yml"], "name the output package with -o"),
        (["does-not-exist.yml", "-o", "service"], "cannot read does-not-exist.yml"),
        (["--format", "xml", "c.yml", "-o", "s"], None),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run(*args)
    assert status == 2
    if message:
        assert message in err


def test_path_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("consumers: [{consumer: consumers:Consumer, queue: q}]\n")
    status, _, err = run(str(config), "-o", str(tmp_path / "service"), "--path", str(tmp_path / "nope"))
    assert status == 2 and "no such directory" in err


def test_path_adds_an_import_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yml"
    config.write_text("consumers: [{consumer: consumers:Consumer, queue: q}]\n")
    assert run(str(config), "-o", "service")[0] == 1, "not importable without --path"
    assert run(str(config), "-o", "service", "--path", str(MODULES))[0] == 0


def test_the_current_directory_is_an_import_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "handlers.py").write_text(
        "class C:\n    def consume(self, amqp, msg): pass\n    def shutdown(self, exception=None): pass\n"
    )
    (tmp_path / "config.yml").write_text("consumers: [{consumer: handlers:C, queue: q}]\n")
    monkeypatch.chdir(tmp_path)
    assert run("config.yml", "-o", "service")[0] == 0


def test_an_internal_error_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "build", broken)
    config = tmp_path / "config.yml"
    config.write_text("consumers: []\n")
    status, _, err = run(str(config), "-o", str(tmp_path / "service"))
    assert status == 3
    assert "internal error, please report it" in err and "RuntimeError: boom" in err
    assert not (tmp_path / "service").exists(), "nothing is written after an internal error"


def legacy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "amqp_dispatcher.compiler.legacy_cli", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


def test_legacy_validate_accepts_a_good_config(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("consumers: [{consumer: consumers:Consumer, queue: q}]\n")
    result = legacy("--validate", "--config", "config.yml", "--path", str(MODULES), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "config.yml is valid\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml"], "--validate writes nothing"


def test_legacy_validate_reports_every_error_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "consumers:\n  - consumer: consumers:Consumr\n    queue: q\n    prefetch_count: -1\n"
    )
    result = legacy("--validate", "--config", "config.yml", "--path", str(MODULES), cwd=tmp_path)
    assert result.returncode == 1
    assert "config.yml:2:15: error[E203]" in result.stderr
    assert "config.yml:4:21: error[E104]" in result.stderr


def test_legacy_default_config_name_is_config_yml(tmp_path: Path) -> None:
    result = legacy("--validate", cwd=tmp_path)
    assert result.returncode == 1, "--validate answers 0 or 1, as the original's did"
    assert "cannot read config.yml" in result.stderr
    result = legacy(cwd=tmp_path)
    assert result.returncode == 2, "running needs a config: a usage error"


def test_the_legacy_command_runs_packages_only_from_a_folder_no_one_else_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amqp_dispatcher.compiler import legacy_cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = legacy_cli._package_home()
    assert home == tmp_path / "cache" / "amqp-dispatcher" and (home.stat().st_mode & 0o777) == 0o700
    home.chmod(0o777)  # prepared by someone else, or left writable: not used
    elsewhere = legacy_cli._package_home()
    assert elsewhere != home and (elsewhere.stat().st_mode & 0o777) == 0o700
    elsewhere.rmdir()
