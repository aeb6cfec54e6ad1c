"""The original command, `amqp-dispatcher --config config.yml`: compiled in memory, then run."""

from __future__ import annotations

import sys

import pytest

from .harness import Project, publish, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
consumers:
  - consumer: workers:Recorder
    queue: legacy
    consumer_count: 2
    prefetch_count: 2
queues:
  - queue: legacy
"""


def test_amqp_dispatcher_config_runs_the_service(tmp_path, services, vhost) -> None:
    built = Project(tmp_path / "legacy", CONFIG)  # not built: the command compiles it
    command = [sys.executable, "-m", "amqp_dispatcher.compiler.legacy_cli", "--config", "config.yml"]
    service = built.service(vhost, command=command).wait_ready()
    services.append(service)
    publish(vhost, "legacy", ["old style"])
    wait_until(lambda: built.events("end"))
    assert service.stop() == 0
    assert not (built.root / "service").exists(), "nothing is written next to the config"


def test_amqp_dispatcher_config_refuses_a_bad_config_with_exit_2(tmp_path, broker) -> None:
    built = Project(tmp_path / "legacy", CONFIG.replace("workers:Recorder", "workers:Recordr"))
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "amqp_dispatcher.compiler.legacy_cli", "--config", "config.yml"],
        cwd=built.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "config.yml:3:15: error[E203]" in result.stderr and "did you mean workers:Recorder?" in result.stderr
