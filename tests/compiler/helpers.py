"""What several compiler tests share: running dispatcher-build in this process, and the artifact project."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from amqp_dispatcher.compiler import cli

ARTIFACT = Path(__file__).parent / "artifact"


def run(*arguments: str) -> tuple[int, str, str]:
    """dispatcher-build with these arguments: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(list(arguments), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def project(root: Path, config: str | None = None) -> Path:
    """A copy of the artifact project (its config, or `config`), as a user would have it."""
    shutil.copytree(ARTIFACT, root)
    if config is not None:
        (root / "config.yml").write_text(config)
    return root
