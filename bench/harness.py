"""Running both sides of a comparison on the same broker, in fresh processes, the same way.

Owns the benchmark's vhost, filling and emptying queues with plain pika, building the
dispatcher's project with dispatcher-build, and starting either side (the generated service,
bench/bare_loop.py, or another framework's worker for bench/comparison.py) with the same
queue, prefetch and message count, then waiting for the Probe's result file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, check=True, timeout=60).stdout


class Broker:
    """A vhost of our own on the local broker, removed at the end."""

    def __init__(self) -> None:
        self.vhost = f"amqpd-bench-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{quote(self.vhost, safe='')}"

    def close(self) -> None:
        rabbitmqctl("delete_vhost", self.vhost)

    def connection(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", virtual_host=self.vhost))

    def declare(self, *queues: str) -> None:
        connection = self.connection()
        for queue in queues:
            connection.channel().queue_declare(queue, durable=False)
        connection.close()

    def fill(self, queue: str, count: int, size: int = 200) -> None:
        """`count` transient messages of `size` bytes, then wait until the broker holds them all."""
        self.publish(queue, itertools.repeat(b"x" * size, count))
        self.wait_until_held(queue, count)

    def publish(self, queue: str, bodies: Iterable[bytes]) -> None:
        """Transient messages through the default exchange, one per body."""
        connection = self.connection()
        channel = connection.channel()
        for body in bodies:
            channel.basic_publish("", queue, body)
        connection.close()

    def wait_until_held(self, queue: str, count: int, timeout: float = 60) -> None:
        connection = self.connection()
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while channel.queue_declare(queue, passive=True).method.message_count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not take {count} messages into {queue}")
            time.sleep(0.05)
        connection.close()

    def purge(self, *queues: str) -> None:
        connection = self.connection()
        for queue in queues:
            connection.channel().queue_purge(queue)
        connection.close()

    def delete(self, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
        """Remove what a run declared (a name that is not there is skipped)."""
        connection = self.connection()
        for queue in queues:
            connection.channel().queue_delete(queue)
        for exchange in exchanges:
            connection.channel().exchange_delete(exchange)
        connection.close()


class Project:
    """A temporary project with the benchmark consumers, built with dispatcher-build."""

    def __init__(self, config: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="amqpd-bench-"))
        shutil.copy(HERE / "consumers.py", self.root / "bench_consumers.py")
        shutil.copy(HERE / "probes.py", self.root / "probes.py")
        (self.root / "config.yml").write_text(config)
        env = {**os.environ, "BENCH_COUNT": "1", "BENCH_RESULT": str(self.root / "unused.json")}
        command = [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "config.yml", "-o", "service"]
        subprocess.run(command, cwd=self.root, env=env, check=True, capture_output=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Subject:
    """One run of one side: a fresh process consuming `count` messages."""

    def __init__(
        self, command: list[str], cwd: Path, broker: Broker, count: int, env: dict[str, str] | None = None
    ) -> None:
        self.result_file = Path(tempfile.mkstemp(prefix="bench-", suffix=".json")[1])
        self.result_file.unlink()
        environment = {
            **{key: value for key, value in os.environ.items() if not key.startswith("RABBITMQ_")},
            "RABBITMQ_URL": broker.url,
            "BENCH_VHOST": broker.vhost,
            "BENCH_COUNT": str(count),
            "BENCH_RESULT": str(self.result_file),
            "PYTHONPATH": str(HERE),
            **(env or {}),
        }
        self.count = count
        self.shared = bool(environment.get("BENCH_SHARED"))
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=self.log, stderr=subprocess.STDOUT)

    @classmethod
    def dispatcher(cls, project: Project, broker: Broker, count: int, transport: str | None = None) -> Subject:
        """The generated service; on the transport named (DISPATCHER_TRANSPORT), or the default."""
        env = {"DISPATCHER_TRANSPORT": transport} if transport else None
        return cls([sys.executable, "-m", "service"], project.root, broker, count, env)

    @classmethod
    def bare(cls, mode: str, queue: str, prefetch: int, broker: Broker, count: int) -> Subject:
        return cls([sys.executable, str(HERE / "bare_loop.py"), mode, queue, str(prefetch)], HERE, broker, count)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_for_log(self, text: str, timeout: float = 60) -> float:
        """Seconds until `text` appears in the output."""
        started = time.monotonic()
        while text not in self.output():
            if self.process.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"no {text!r} from {self.process.args}:\n{self.output()[-3000:]}")
            time.sleep(0.01)
        return time.monotonic() - started

    def result(self, timeout: float = 300) -> dict[str, Any]:
        if self.shared:
            return self._shared_result(timeout)
        deadline = time.monotonic() + timeout
        while not self.result_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()[-3000:]  # before stop() closes the log
                self.stop()
                raise RuntimeError(f"{self.process.args} produced no result:\n{output}")
            time.sleep(0.02)
        result: dict[str, Any] = json.loads(self.result_file.read_text())
        return result

    def _shared_result(self, timeout: float) -> dict[str, Any]:
        """Several worker processes: their figures added up, once they have counted every message."""
        deadline = time.monotonic() + timeout
        while True:
            parts = []
            for path in self.result_file.parent.glob(f"{self.result_file.name}.*"):
                if not path.name.endswith(".tmp"):
                    with contextlib.suppress(OSError, ValueError):
                        parts.append(json.loads(path.read_text()))
            if sum(part["count"] for part in parts) >= self.count:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()[-3000:]
                self.stop()
                raise RuntimeError(f"{self.process.args} counted too few messages:\n{output}")
            time.sleep(0.05)
        return {
            "count": sum(part["count"] for part in parts),
            "seconds": max(part["last"] for part in parts) - min(part["first"] for part in parts),
            "cpu_seconds": sum(part["cpu_seconds"] for part in parts),
            "processes": len(parts),
            "latencies": [],
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.result_file.unlink(missing_ok=True)
        for path in self.result_file.parent.glob(f"{self.result_file.name}.*"):
            path.unlink(missing_ok=True)
        self.log.close()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_megabytes(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")
