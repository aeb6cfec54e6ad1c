"""The integration-test harness: the real broker, one vhost per test, the service as a subprocess.

Tests publish and inspect with plain pika (BlockingConnection), run `python -m service` as a
child process with its connection settings in the environment, signal it like an operator,
and read what the consumers did from an events file.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika

from amqp_dispatcher.compiler import cli

HOST, PORT = "127.0.0.1", 5672
WORKERS = Path(__file__).parent / "workers.py"


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout


def restart_broker(pause: float = 2.0) -> None:
    """stop_app, wait, start_app: the broker goes away and comes back, as in a rolling restart."""
    try:
        rabbitmqctl("stop_app")
        time.sleep(pause)
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup", timeout=120)


def connections(vhost: str, *fields: str) -> list[dict[str, str]]:
    """The broker's connections in `vhost`, with these fields (list_connections lists every vhost's)."""
    listing = rabbitmqctl("list_connections", "vhost", *fields, "--quiet")
    rows = [line.split("\t") for line in listing.splitlines()[1:] if line.strip()]
    return [dict(zip(fields, row[1:], strict=True)) for row in rows if row[0] == vhost]


def create_vhost() -> str:
    name = f"amqpd-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def url(vhost: str, *, user: str = "guest", password: str = "guest", hosts: str = f"{HOST}:{PORT}") -> str:
    return f"amqp://{user}:{password}@{hosts}/{quote(vhost, safe='')}"


@contextmanager
def channel(vhost: str) -> Iterator[Any]:
    parameters = pika.ConnectionParameters(
        HOST, PORT, virtual_host=vhost, credentials=pika.PlainCredentials("guest", "guest")
    )
    connection = pika.BlockingConnection(parameters)
    try:
        yield connection.channel()
    finally:
        connection.close()


def publish(
    vhost: str,
    routing_key: str,
    bodies: list[bytes | str],
    *,
    exchange: str = "",
    headers: dict[str, Any] | None = None,
    persistent: bool = True,
) -> None:
    with channel(vhost) as ch:
        ch.confirm_delivery()
        properties = pika.BasicProperties(headers=headers, delivery_mode=2 if persistent else 1)
        for body in bodies:
            ch.basic_publish(exchange, routing_key, body, properties, mandatory=True)


def queue_depth(vhost: str, queue: str) -> int:
    """Ready messages in the queue (unacknowledged ones are not counted)."""
    with channel(vhost) as ch:
        return int(ch.queue_declare(queue, passive=True).method.message_count)


def purge(vhost: str, queue: str) -> None:
    with channel(vhost) as ch:
        ch.queue_purge(queue)


def drain(vhost: str, queue: str) -> list[tuple[Any, Any, bytes]]:
    """Every ready message of the queue, acknowledged."""
    messages = []
    with channel(vhost) as ch:
        while True:
            method, properties, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((method, properties, body))


def complete_lines(text: str) -> list[str]:
    """The lines of a file another process is appending to, without the one it may be writing."""
    return text[: text.rfind("\n") + 1].splitlines()


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")
        time.sleep(interval)


def service_environment(vhost: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a service under test: this process's without its RABBITMQ_ settings,
    the vhost's URL when one is given, and `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RABBITMQ_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    if vhost is not None:
        env["RABBITMQ_URL"] = url(vhost)
    env.update(extra)
    return env


class Project:
    """A user's project: workers.py, config.yml, and the package built from it."""

    def __init__(self, root: Path, config: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(WORKERS, root / "workers.py")
        (root / "config.yml").write_text(config, encoding="utf-8")
        self.events_file = root / "events.jsonl"
        self.events_file.touch()

    def build(self) -> Project:
        out, err = io.StringIO(), io.StringIO()
        old = os.getcwd()
        os.chdir(self.root)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                status = cli.run(["config.yml", "-o", "service"])
        finally:
            os.chdir(old)
        assert status == 0, err.getvalue()
        return self

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The events written so far; a line the service is still appending is not read."""
        lines = complete_lines(self.events_file.read_text(encoding="utf-8"))
        events = [json.loads(line) for line in lines if line.strip()]
        return [event for event in events if kind is None or event["event"] == kind]

    def environment(self, vhost: str | None = None, **extra: str) -> dict[str, str]:
        """This process's environment without its RABBITMQ_ settings, plus the project's."""
        return service_environment(vhost, EVENTS_FILE=str(self.events_file), **extra)

    def service(self, vhost: str | None = None, *, command: list[str] | None = None, **environment: str) -> Service:
        """`python -m service` (or `command`) in the project, against `vhost`."""
        return Service(self.root, self.environment(vhost, **environment), command)


class Service:
    """`python -m service` in a child process, with its output in a log file."""

    def __init__(self, root: Path, env: dict[str, str], command: list[str] | None = None) -> None:
        self.root = root
        self.log_file = root / f"service-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_file, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "service"], cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def log(self) -> str:
        """What the service has logged; while it runs, only whole lines (the last may be half-written)."""
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return text if self.process.poll() is not None else "".join(line + "\n" for line in complete_lines(text))

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.process.poll() is not None and not re.search(pattern, self.log):
                raise AssertionError(
                    f"the service exited with {self.process.returncode} before {pattern!r}:\n{self.log}"
                )
            return re.search(pattern, self.log)

        return wait_until(found, timeout, message=f"{pattern!r} in the service log")  # type: ignore[no-any-return]

    def wait_ready(self, timeout: float = 30.0) -> Service:
        self.wait_for_log(r"ready: \d+ consumer entries", timeout)
        return self

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def stop(self, timeout: float = 60.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
