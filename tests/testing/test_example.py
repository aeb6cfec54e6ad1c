"""The README's test-kit example is examples/tests/test_shop.py, and it passes."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "tests" / "test_shop.py"


def test_the_readme_shows_the_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your consumers", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLE.read_text(encoding="utf-8")


def test_the_example_passes_as_a_user_runs_it() -> None:
    """From examples/, with the fixture that installing amqp-dispatcher registers."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ".", "tests"],
        cwd=ROOT / "examples",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout, result.stdout
