"""Logging: the amqp-dispatcher logger tree, entry and queue on every line, LOGGING_FILE_CONFIG."""

from __future__ import annotations

import re

import pytest

from .harness import publish, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
consumers:
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: work
"""


def test_pool_lines_name_the_consumer_entry_and_its_queue(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", ["x"], headers={"fail_once": True})
    wait_until(lambda: built.events("end"))
    service.stop()
    pool_lines = [line for line in service.log.splitlines() if " amqp-dispatcher.pool[" in line]
    assert len(pool_lines) >= 3
    assert all("consumer workers:Recorder on queue 'work': " in line for line in pool_lines)
    names = {line.split()[3].split("[")[0] for line in service.log.splitlines() if line[:4].isdigit()}
    assert names <= {f"amqp-dispatcher{suffix}" for suffix in ("", ".pool", ".connection", ".topology", ".watchdog")}


def test_logging_file_config_is_applied(project, services, vhost, tmp_path) -> None:
    built = project(CONFIG)
    log_file = tmp_path / "service.log"
    config = tmp_path / "logging.ini"
    config.write_text(f"""
[loggers]
keys=root,dispatcher

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_dispatcher]
level=DEBUG
handlers=file
qualname=amqp-dispatcher
propagate=0

[handler_file]
class=FileHandler
level=DEBUG
formatter=plain
args=('{log_file}',)

[formatter_plain]
format=CUSTOM %(levelname)s %(name)s %(message)s
""")
    service = built.service(vhost, LOGGING_FILE_CONFIG=str(config))
    services.append(service)
    wait_until(lambda: log_file.exists() and "ready:" in log_file.read_text())
    assert service.stop() == 0
    text = log_file.read_text()
    assert "CUSTOM INFO amqp-dispatcher.connection ready: 1 consumer entries with 1 instances" in text
    assert "ready:" not in service.log, "the file config decides where lines go"


def test_a_broken_logging_file_config_exits_2(project, services, vhost, tmp_path) -> None:
    built = project(CONFIG)
    service = built.service(vhost, LOGGING_FILE_CONFIG=str(tmp_path / "missing.ini"))
    services.append(service)
    assert service.wait(30) == 2
    assert "LOGGING_FILE_CONFIG=" in service.log and "missing.ini" in service.log


@pytest.mark.parametrize(
    "handler,expected",
    [
        ("startup_logs", r"\d INFO workers\[\d+\]: startup handler: pools created"),
        ("startup_basic_config", r"BASIC INFO workers configured by the startup handler"),
        ("startup_root_handler", r"OLD - amqp-dispatcher.connection - INFO - ready: 1 consumer entries"),
    ],
)
def test_the_startup_handler_s_lines_are_shown_and_it_can_configure_logging(
    project, services, vhost, handler: str, expected: str
) -> None:
    built = project(f"startup_handler: workers:{handler}\n" + CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert service.stop() == 0
    log = service.log
    assert re.search(expected, log), log
    assert log.count("ready: 1 consumer entries") == 1, "one handler: no line twice"
    if handler == "startup_basic_config":
        assert "BASIC INFO amqp-dispatcher.connection ready: 1 consumer entries" in log
        assert not re.search(r"^\d{4}-", log, re.MULTILINE), "the handler's format, not ours"


def test_lines_before_the_startup_handler_use_the_default_format(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost, RABBITMQ_HOST="ignored.example").wait_ready()
    services.append(service)
    assert service.stop() == 0
    line = r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING amqp-dispatcher.settings\[\d+\]: "
    line += r"RABBITMQ_URL is set, so RABBITMQ_HOST is ignored$"
    assert re.search(line, service.log, re.MULTILINE), service.log
