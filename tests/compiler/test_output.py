"""Nothing half-written: a failed build touches nothing, a good one replaces the package whole."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from amqp_dispatcher.compiler import cli, output

MODULES = Path(__file__).parent / "artifact"
GOOD = "consumers:\n  - consumer: consumers:Consumer\n    queue: orders\n    prefetch_count: {prefetch}\n"
BAD = "consumers:\n  - consumer: consumers:Consumer\n    queue: orders\n    prefetch_count: 70000\n"


def build(config: Path, target: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    status = cli.run([str(config), "-o", str(target), "--path", str(MODULES), *extra], stdout=io.StringIO(), stderr=err)
    return status, err.getvalue()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(GOOD.format(prefetch=10))
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def test_a_failed_build_does_not_create_the_output(tmp_path: Path, config: Path) -> None:
    config.write_text(BAD)
    status, _ = build(config, tmp_path / "service")
    assert status == 1
    assert not (tmp_path / "service").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml"], "no temporary directory is left behind"


def test_a_failed_build_leaves_an_existing_package_untouched(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    before = snapshot(target)
    config.write_text(BAD)
    assert build(config, target)[0] == 1
    assert snapshot(target) == before


def test_a_good_build_replaces_the_package_whole(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    (target / "__pycache__").mkdir()
    (target / "__pycache__" / "stale.pyc").write_bytes(b"old")
    inode = target.stat().st_ino
    config.write_text(GOOD.format(prefetch=99))
    assert build(config, target)[0] == 0
    assert "prefetch_count=99" in (target / "__init__.py").read_text()
    assert not (target / "__pycache__").exists(), "stale bytecode goes with the old package"
    assert target.stat().st_ino != inode, "the directory is swapped in, not edited in place"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml", "service"]


def test_files_are_written_exactly_as_the_manifest_says(tmp_path: Path, config: Path) -> None:
    import hashlib

    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    manifest = json.loads((target / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in target.iterdir()) == sorted([*manifest["files"], "manifest.json"])


def test_a_directory_it_did_not_write_is_never_replaced(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    target.mkdir()
    (target / "precious.txt").write_text("user data")
    status, err = build(config, target)
    assert status == 2
    assert "was not written by dispatcher-build" in err
    assert (target / "precious.txt").read_text() == "user data"


def test_a_generated_package_with_added_files_is_not_replaced(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    (target / "notes.md").write_text("mine")
    status, err = build(config, target)
    assert status == 2
    assert "notes.md" in err
    assert (target / "notes.md").read_text() == "mine"


def test_the_output_directory_must_be_a_package_name(tmp_path: Path, config: Path) -> None:
    status, err = build(config, tmp_path / "my-service")
    assert status == 2
    assert "must be a Python package name" in err


def test_check_on_a_missing_package_fails_and_writes_nothing(tmp_path: Path, config: Path) -> None:
    status, err = build(config, tmp_path / "service", "--check")
    assert status == 1
    assert "does not exist" in err
    assert not (tmp_path / "service").exists()


def test_check_explains_a_config_change(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    config.write_text(GOOD.format(prefetch=11))
    status, err = build(config, target, "--check")
    assert status == 1
    assert "the config changed since it was generated" in err
    assert "-            prefetch_count=10," in err
    assert "+            prefetch_count=11," in err


def test_check_ignores_only_the_build_environment(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["build_environment"]["python"] = "3.99"
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    assert build(config, target, "--check")[0] == 0


def test_swap_falls_back_to_two_renames(tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where renameat2 is missing, the package is still replaced and nothing is left over."""
    target = tmp_path / "service"
    assert build(config, target)[0] == 0
    monkeypatch.setattr(output, "_exchange", lambda first, second: False)
    config.write_text(GOOD.format(prefetch=42))
    assert build(config, target)[0] == 0
    assert "prefetch_count=42" in (target / "__init__.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml", "service"]


def test_files_get_the_usual_permissions(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "service"
    umask = os.umask(0o022)
    try:
        assert build(config, target)[0] == 0
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o755
    assert (target / "__init__.py").stat().st_mode & 0o777 == 0o644
