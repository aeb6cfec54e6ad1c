"""The documentation says what the code does."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def test_error_catalog_is_current() -> None:
    spec = importlib.util.spec_from_file_location("error_catalog", ROOT / "scripts" / "error_catalog.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "errors.md").read_text(encoding="utf-8") == module.render(), (
        "docs/errors.md is stale: run python scripts/error_catalog.py"
    )


def test_readme_starts_with_its_title_then_the_two_setup_commands_in_a_code_block() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0] == "# amqp-dispatcher"
    opening = next(number for number, line in enumerate(lines) if line.startswith("```"))
    closing = lines.index("```", opening + 1)
    commands = [line.split("#")[0].strip() for line in lines[opening + 1 : closing]]
    assert opening < 5 and commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert (ROOT / command).is_file(), command


def test_the_project_docs_stand_alone() -> None:
    """They cite the project's own map, not a design note outside the repository."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        path = ROOT / name
        if path.suffix in (".md", ".py", ".toml", ".j2") and path.is_file() and path != Path(__file__):
            assert "DESIGN.md" not in path.read_text(encoding="utf-8", errors="replace"), name


def test_examples_use_the_schema_modeline() -> None:
    for config in (ROOT / "examples").glob("*.yml"):
        first = config.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), config.name
        schema = (config.parent / first.split("$schema=", 1)[1]).resolve()
        assert schema == (ROOT / "src" / "amqp_dispatcher" / "schema" / "amqp-dispatcher.schema.json").resolve()
