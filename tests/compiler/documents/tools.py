"""The real checkers of the documents, as the tests call them: AsyncAPI's parser and the Mermaid CLI.

Both are npm packages, pinned in package.json and package-lock.json beside this file. `checkers()`
installs them once per lock file with `npm ci` into a folder outside the checkout,
`${XDG_CACHE_HOME:-~/.cache}/amqp-dispatcher/npm-<hash of both files>`, under a file lock so that
two test processes never race (a killed install is redone, never used). The Mermaid CLI renders
in Chromium: Debian's `/usr/bin/chromium`, which `chromium()` installs with apt when the tests
run as root, never puppeteer's own download (`PUPPETEER_SKIP_DOWNLOAD=1`). A checker that
cannot be had is a skip with the reason on a developer's machine, and a failure under `CI=true`
(for Chromium, only where it could have been installed and was not). Nothing here writes into
the checkout: the scripts beside this file run from it and load the packages from the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
LOCKED = ("package.json", "package-lock.json")
CHROMIUM = Path("/usr/bin/chromium")
NODE_MINIMUM = (20, 0)  # package.json's engines: the lock file was made and tested with Node.js 20
IS_CI = os.environ.get("CI") == "true"
_NETWORK = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|socket hang up", re.I)
_INSTALL_TIMEOUT = 900  # seconds: npm ci fetches about 430 packages (~550 MB unpacked)


class Unavailable(Exception):
    """A checker cannot be had here; `is_failure` says whether that fails the run rather than skips."""

    def __init__(self, reason: str, *, is_failure: bool) -> None:
        super().__init__(reason)
        self.is_failure = is_failure


@dataclass(frozen=True, slots=True)
class Checkers:
    """The installed packages (`home`) and the Chromium the Mermaid CLI renders in."""

    home: Path
    chromium: Path | None = None

    def validate_asyncapi(self, files: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
        """File -> what @asyncapi/parser reports: `severity` 0 error, 1 warning, 2 information, 3 hint."""
        return self._run("validate_asyncapi.mjs", files)

    def render_mermaid(self, files: Sequence[Path]) -> dict[str, str | None]:
        """File -> None when the Mermaid CLI rendered it (to FILE.svg), else Mermaid's error."""
        return self._run("render_mermaid.mjs", files)

    def _run(self, script: str, files: Sequence[Path]) -> Any:
        environment = {**os.environ, "CHECKERS_HOME": str(self.home), "CHROMIUM": str(self.chromium or "")}
        command = ["node", str(HERE / script), *map(str, files)]
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600, cwd=self.home)
        assert result.returncode == 0, f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}"
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert isinstance(report, dict)
        return report


def require(function: Any, *arguments: Any) -> Any:
    """The checker `function` returns, or a skip (a failure under CI) saying why there is none."""
    try:
        return function(*arguments)
    except Unavailable as unavailable:
        if unavailable.is_failure:
            pytest.fail(str(unavailable))
        pytest.skip(str(unavailable))


def packages() -> Path:
    """The folder holding node_modules for this lock file, installed if it is not yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node and npm are not installed (apt: nodejs npm)", is_failure=IS_CI)
    _check_node_version(node)
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in LOCKED)).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "amqp-dispatcher"
    home = cache / f"npm-{digest}"
    done = home / ".installed"
    if done.exists():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"npm-{digest}.lock"):
        if not done.exists():
            _install(npm, home)
            done.touch()
    return home


def chromium() -> Path:
    """Debian's Chromium, installed with apt if it is missing and this process may."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise Unavailable(f"{CHROMIUM} is not installed (as root: apt-get install -y chromium)", is_failure=False)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "amqp-dispatcher"
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "chromium.lock"):
        if not CHROMIUM.exists():
            _apt_install(apt)
    if not CHROMIUM.exists():
        raise Unavailable(f"apt-get installed chromium, but {CHROMIUM} is missing", is_failure=IS_CI)
    return CHROMIUM


def _check_node_version(node: str) -> None:
    found = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    match = re.fullmatch(r"v(\d+)\.(\d+)\..*", found)
    if match is None or (int(match[1]), int(match[2])) < NODE_MINIMUM:
        wanted = ".".join(map(str, NODE_MINIMUM))
        raise Unavailable(f"node {found or '?'} is older than {wanted}, which package.json asks for", is_failure=IS_CI)


def _install(npm: str, home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)  # what a killed install left
    home.mkdir(parents=True)
    for name in LOCKED:
        shutil.copyfile(HERE / name, home / name)
    # No install scripts: puppeteer's would download a browser of its own, and none is needed.
    environment = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1", "npm_config_update_notifier": "false"}
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        result = subprocess.run(
            command, cwd=home, env=environment, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm ci took more than {_INSTALL_TIMEOUT} s", is_failure=IS_CI) from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-800:]
        is_network = bool(_NETWORK.search(output))
        reason = "the npm registry cannot be reached" if is_network else "npm ci failed"
        raise Unavailable(f"{reason} ({' '.join(command)} in {home}):\n{output}", is_failure=IS_CI or not is_network)


def _apt_install(apt: str) -> None:
    install = [apt, "install", "-y", "chromium"]
    if _apt(install) is None:
        return
    _apt([apt, "update"])  # a fresh machine's package lists may be empty, or too old to find it
    problem = _apt(install)
    if problem is not None:
        raise Unavailable(f"apt-get install -y chromium failed:\n{problem}", is_failure=IS_CI)


def _apt(command: list[str]) -> str | None:
    """None when the command succeeded, else the end of what it printed."""
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=_INSTALL_TIMEOUT)
    return None if result.returncode == 0 else (result.stdout + result.stderr).strip()[-800:]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
