"""The import probe contains what it starts: processes, time, memory.

Each test writes a small module into a temporary directory and builds a config that names it.
The modules write their own process ids (and their children's) to a file, so that the tests can
check that nothing they started outlives the build.
"""

from __future__ import annotations

import io
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from amqp_dispatcher.compiler import cli

CONSUMER = """
class Consumer:
    def consume(self, amqp, msg):
        pass

    def shutdown(self, exception=None):
        pass
"""
SPAWN_SLEEP = """
import os, pathlib, subprocess
# Inherits the probe's stdout and stderr, as a forgotten worker or a log shipper would.
child = subprocess.Popen(["sleep", "300"])
pathlib.Path(__file__).with_name("pids").write_text(f"{os.getpid()} {child.pid}")
"""


def build(tmp_path: Path, module: str, *options: str) -> tuple[int, str]:
    """Build a one-consumer config whose module is `module`; the exit status and stderr."""
    (tmp_path / "usermod.py").write_text(textwrap.dedent(module) + CONSUMER)
    (tmp_path / "config.yml").write_text("consumers: [{consumer: usermod:Consumer, queue: orders}]\n")
    err = io.StringIO()
    status = cli.run(
        [str(tmp_path / "config.yml"), "-o", str(tmp_path / "service"), "--path", str(tmp_path), *options],
        stdout=io.StringIO(),
        stderr=err,
    )
    return status, err.getvalue()


def started(tmp_path: Path) -> tuple[int, int]:
    """The process ids the module wrote: the probe's, and its child's."""
    probe, child = (tmp_path / "pids").read_text().split()
    return int(probe), int(child)


def is_gone(pid: int) -> bool:
    """Ended: no such process, or a zombie (dead, waiting only for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether the condition holds within `within` seconds: SIGKILL is delivered asynchronously."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_child_that_holds_the_output_does_not_hold_the_build(tmp_path: Path) -> None:
    status, err = build(tmp_path, SPAWN_SLEEP, "--import-timeout", "60")
    # Waiting for the end of the pipes the child holds would last the whole timeout: E208, status 1.
    assert status == 0 and "E208" not in err, err
    probe, child = started(tmp_path)
    assert eventually(lambda: is_gone(child)), f"the module's child {child} outlived the build"
    assert is_gone(probe)


def test_a_module_that_hangs_is_killed_with_what_it_started(tmp_path: Path) -> None:
    status, err = build(tmp_path, SPAWN_SLEEP + "import time\ntime.sleep(300)\n", "--import-timeout", "2")
    assert status == 1 and "error[E208]" in err and "within 2 s" in err
    probe, child = started(tmp_path)
    assert eventually(lambda: is_gone(probe) and is_gone(child)), (probe, child)


def test_an_import_that_needs_too_much_memory_is_e202_naming_the_option(tmp_path: Path) -> None:
    status, err = build(tmp_path, "data = bytearray(2 * 1024**3)\n", "--import-memory", "200")
    assert status == 1
    assert "error[E202]" in err and "raised MemoryError" in err
    assert "200 MB" in err and "--import-memory MB" in err


def test_after_a_memory_error_the_next_module_gets_the_whole_limit_again(tmp_path: Path) -> None:
    """What the failed module held is freed, and the limit restored, before the next one imports."""
    # Held by the module's namespace, which the class's methods (defined first) refer back to: a cycle.
    greedy = "chunks = []\nfor _ in range(100):\n    chunks.append(bytearray(10 * 1024**2))\n"
    (tmp_path / "greedy.py").write_text(CONSUMER + greedy)
    config = "consumers: [{consumer: greedy:Consumer, queue: a}, {consumer: usermod:Consumer, queue: b}]\n"
    (tmp_path / "usermod.py").write_text("data = bytearray(150 * 1024**2)\n" + CONSUMER)
    (tmp_path / "config.yml").write_text(config)
    err = io.StringIO()
    args = [str(tmp_path / "config.yml"), "-o", str(tmp_path / "service"), "--path", str(tmp_path)]
    status = cli.run([*args, "--import-memory", "200"], stdout=io.StringIO(), stderr=err)
    assert status == 1
    assert err.getvalue().count("error[E202]") == 1 and "importing greedy raised MemoryError" in err.getvalue()


@pytest.mark.parametrize("option,expected", [("100", str(100 * 1024 * 1024)), ("0", "unlimited")])
def test_the_memory_limit_is_set_before_user_code_runs(tmp_path: Path, option: str, expected: str) -> None:
    module = """
    import pathlib, resource
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    pathlib.Path(__file__).with_name("limit").write_text(shown)
    """
    status, err = build(tmp_path, module, "--import-memory", option)
    assert status == 0, err
    assert (tmp_path / "limit").read_text() == expected


def test_the_default_memory_limit_is_generous(tmp_path: Path) -> None:
    module = """
    import pathlib, resource
    pathlib.Path(__file__).with_name("limit").write_text(str(resource.getrlimit(resource.RLIMIT_DATA)[0]))
    """
    assert build(tmp_path, module)[0] == 0
    assert int((tmp_path / "limit").read_text()) == 4096 * 1024 * 1024


def test_a_module_that_reads_stdin_gets_nothing_and_does_not_wait(tmp_path: Path) -> None:
    module = """
    import pathlib, sys
    pathlib.Path(__file__).with_name("stdin").write_text(repr(sys.stdin.read()))
    """
    status, err = build(tmp_path, module, "--import-timeout", "60")
    assert status == 0, err
    assert (tmp_path / "stdin").read_text() == "''"


def test_a_module_that_kills_the_probe_is_e202_naming_the_signal(tmp_path: Path) -> None:
    status, err = build(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert status == 1
    assert "error[E202]" in err and "killed the import process (SIGKILL)" in err


def test_import_memory_must_be_a_whole_number(tmp_path: Path) -> None:
    status = cli.run(
        ["config.yml", "-o", "service", "--import-memory", "-5"], stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert status == 2
