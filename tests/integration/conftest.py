"""Fixtures for tests against the real RabbitMQ on 127.0.0.1:5672.

Without a broker these tests skip on a developer's machine and fail in CI (CI=true), where a
skipped integration test would hide a missing broker.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import HOST, PORT, Project, Service, create_vhost, rabbitmqctl


def _broker_answers() -> bool:
    try:
        socket.create_connection((HOST, PORT), 2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def broker() -> None:
    if not _broker_answers():
        message = f"RabbitMQ does not answer on {HOST}:{PORT} (scripts/broker starts it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def vhost(broker: None) -> Iterator[str]:
    """A fresh vhost for the test, deleted afterwards with everything in it."""
    name = create_vhost()
    try:
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Project]:
    def make(config: str) -> Project:
        return Project(tmp_path / "project", config).build()

    return make


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services started by a test; any still running at the end is killed."""
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()
