"""The documentation says what the code does."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def test_error_catalog_is_current() -> None:
    spec = importlib.util.spec_from_file_location("error_catalog", ROOT / "scripts" / "error_catalog.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "errors.md").read_text(encoding="utf-8") == module.render(), (
        "docs/errors.md is stale: run python scripts/error_catalog.py"
    )


def test_readme_starts_with_the_two_setup_commands() -> None:
    commands = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("scripts/")]
    assert commands[:2] == ["scripts/demo", "scripts/test"]


def test_examples_use_the_schema_modeline() -> None:
    for config in (ROOT / "examples").glob("*.yml"):
        first = config.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), config.name
        schema = (config.parent / first.split("$schema=", 1)[1]).resolve()
        assert schema == (ROOT / "schema" / "amqp-dispatcher.schema.json").resolve()
