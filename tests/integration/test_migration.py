"""docs/migrating.md, proved: the original's configs and consumers run after exactly its edits.

The projects under migration/ are written for this test in the style of seatgeek/amqp-dispatcher's
own examples, test configs and consumers, 0.x and 1.x, with every key and call those use; each
file says which upstream shape it mirrors. A test copies one into tmp_path, applies only the
edits that the guide marks for such a service (EDITS holds [M3] to [M9] as code), and runs it on
a fresh vhost the way the original was run: built once into `python -m service`, `make example`,
`amqp-dispatcher --config`, and 1.x's `python -m amqpdispatcher.dispatcher`. [M1] (install
version 2) is this virtualenv, and [M2] (keep the command, or build once) is how a test starts
the service: neither edits a file. [M4] and [M5] are never needed: the original's examples write
booleans as true and false, and use no key it did not know.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import Service, channel, publish, rabbitmqctl, service_environment, wait_until

pytestmark = pytest.mark.broker

MIGRATION = Path(__file__).parent / "migration"
GUIDE = Path(__file__).parents[2] / "docs" / "migrating.md"
# The virtualenv's console scripts, as a user's PATH finds them.
AMQP_DISPATCHER = str(Path(sys.executable).parent / "amqp-dispatcher")
DISPATCHER_BUILD = str(Path(sys.executable).parent / "dispatcher-build")


# The edits, each as the guide words it, on a copy of a project.


def _rewrite(root: Path, files: str, rewrites: tuple[tuple[str, str], ...]) -> None:
    for path in sorted(root.rglob(files)):
        text = path.read_text(encoding="utf-8")
        for pattern, replacement in rewrites:
            text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
        path.write_text(text, encoding="utf-8")


def remove_passive_from_queues(root: Path) -> None:
    """[M3]: every queue of these configs is one the service should create."""
    _rewrite(root, "*.yml", ((r"^ +passive: true\n", ""),))


def declare_bound_exchanges(root: Path, *, owned_elsewhere: bool = False) -> None:
    """[M6]: declare under `exchanges:` each exchange a binding names (RabbitMQ's amq.* need not
    be), for the service to create, or with passive: true where another service owns it."""
    for config in sorted(root.rglob("*.yml")):
        text = config.read_text(encoding="utf-8")
        bound = dict.fromkeys(re.findall(r"^ +- exchange: (\S+)$", text, re.MULTILINE))
        undeclared = [name for name in bound if not name.startswith("amq.")]
        if undeclared and not re.search(r"^exchanges:", text, re.MULTILINE):
            passive = "\n    passive: true" if owned_elsewhere else ""
            entries = "".join(f"  - exchange: {name}{passive}\n" for name in undeclared)
            config.write_text(f"{text}\nexchanges:\n{entries}", encoding="utf-8")


def remove_async(root: Path) -> None:
    """[M7]: plain methods without `await`, and gevent for asyncio.

    Besides `asyncio.sleep(n)`, which the guide names, 1.x's ForeverConsumer awaits an asyncio
    future. Its gevent counterpart is an AsyncResult, whose get() waits in the same way; merely
    dropping `await` would make that consume return at once (and its message be acked).
    """
    _rewrite(
        root,
        "*.py",
        (
            (r"^import asyncio$", "import gevent\nimport gevent.event"),
            (r"\basync def ", "def "),
            (r"\bawait asyncio\.sleep\(", "gevent.sleep("),
            (r"^ *loop = asyncio\.get_event_loop\(\)\n", ""),
            (r"\bloop\.create_future\(\)", "gevent.event.AsyncResult()"),
            (r"\bawait (\w+)$", r"\1.get()"),
            (r"\bawait ", ""),
        ),
    )


def remove_amqpdispatcher_imports(root: Path) -> None:
    """[M8]: no imports from `amqpdispatcher`, and logging.getLogger for its getLogger. The type
    hints that named the removed classes go too (left alone, they are NameErrors at import)."""
    _rewrite(
        root,
        "*.py",
        (
            (r"^from amqpdispatcher\.logging import getLogger$", "import logging"),
            (r"^from amqpdispatcher\.\w+ import \w+\n", ""),
            (r"(?<![\w.])getLogger\(", "logging.getLogger("),
            (r": (AMQPProxy|Message)\b", ""),
        ),
    )


def read_public_fields(root: Path) -> None:
    """[M9]: `amqp.tag` for aio-pika's delivery tag, and `msg.text` where 1.x's str body was used."""
    _rewrite(
        root,
        "*.py",
        (
            (r"\bamqp\._message\.raw_message\.delivery_tag\b", "amqp.tag"),
            (r"\bmsg\.body\b", "msg.text"),
        ),
    )


EDITS: dict[str, Callable[[Path], None]] = {
    "M3": remove_passive_from_queues,
    "M6": declare_bound_exchanges,
    "M7": remove_async,
    "M8": remove_amqpdispatcher_imports,
    "M9": read_public_fields,
}


def migrated(fixture: str, target: Path, *labels: str) -> Path:
    """A copy of a project of migration/, after the given edits of the guide."""
    root = Path(shutil.copytree(MIGRATION / fixture, target))
    for label in labels:
        EDITS[label](root)
    return root


# The broker and the service.


def start(cwd: Path, vhost: str, command: list[str], **environment: str) -> Service:
    """The command in cwd, with this environment but for RABBITMQ_URL, which names the vhost."""
    return Service(cwd, service_environment(vhost, **environment), command)


def run_to_the_end(cwd: Path, vhost: str, command: list[str]) -> tuple[int, str]:
    service = start(cwd, vhost, command)
    try:
        return service.wait(60), service.log
    finally:
        service.kill()


def queue_counts(vhost: str) -> dict[str, tuple[int, int]]:
    """Every queue of the vhost: (ready, unacknowledged), as the broker counts them."""
    output = rabbitmqctl(
        "list_queues", "-p", vhost, "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"
    )
    rows = (line.split("\t") for line in output.splitlines() if line.strip())
    return {name: (int(ready), int(unacked)) for name, ready, unacked in rows}


def wait_settled(vhost: str, *queues: str) -> None:
    """Until each queue is empty: every message that reached it was acknowledged."""
    wait_until(
        lambda: all(queue_counts(vhost).get(queue) == (0, 0) for queue in queues),
        message=f"every message of {', '.join(queues)} acknowledged",
    )


def create_as_publish_py_did(vhost: str, bindings: dict[str, str]) -> None:
    """What upstream's publish.py set up for the 0.x examples: exchange `test_exchange` (direct,
    not durable, as haigha declared it) and queues (not durable), each bound with its key."""
    with channel(vhost) as ch:
        ch.exchange_declare("test_exchange", "direct")
        for queue, routing_key in bindings.items():
            ch.queue_declare(queue, auto_delete=False)
            ch.queue_bind(queue, "test_exchange", routing_key)


def lines_with(log: str, text: str) -> int:
    return sum(text in line for line in log.splitlines())


# The guide.


def test_every_edit_made_here_is_one_the_guide_labels() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert "tests/integration/test_migration.py" in guide
    assert [label for label in ("M1", "M2", *EDITS) if f"**[{label}]" not in guide] == []
    # [M1]: the commands of this virtualenv are version 2's.
    version = subprocess.run([AMQP_DISPATCHER, "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.startswith("amqp-dispatcher 2."), version.stdout + version.stderr


# 0.x: the README's configs.


def test_the_readme_consumers_of_0x_build_once_and_run_as_they_are(tmp_path, vhost, services) -> None:
    root = migrated("readme_0x", tmp_path / "project")  # [M1] and [M2] only
    create_as_publish_py_did(vhost, {"test_queue": "test_key", "test_queue_2": "test_key_2"})
    build = subprocess.run(
        [DISPATCHER_BUILD, "amqp-dispatcher-config.yml", "-o", "service"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 0 and "warning" not in build.stderr, build.stderr
    service = start(root, vhost, [sys.executable, "-m", "service"])
    services.append(service)
    service.wait_ready()
    publish(vhost, "test_key", ["ok-1", "fail-1", "publish-1", "fail-2"], exchange="test_exchange")
    publish(vhost, "test_key_2", ["ok-2", "publish-2", "ok-3"], exchange="test_exchange")
    wait_settled(vhost, "test_queue", "test_queue_2")
    assert service.stop() == 0
    log = service.log
    # A ValueError requeues the message, which is consumed again, and acked then.
    assert lines_with(log, "Consuming message b'fail-1'") == 2 and lines_with(log, "Consuming message b'ok-1'") == 1
    assert "consume raised on delivery" in log and "ValueError" in log
    # A publish that no queue receives does not fail the consume: it is dropped, as the original did.
    assert "routing key 'test_routing_key' reached no queue" in log


def test_the_readme_queue_config_runs_after_m3_and_m6(tmp_path, vhost, services) -> None:
    root = migrated("readme_0x", tmp_path / "project", "M3")
    declare_bound_exchanges(root, owned_elsewhere=True)  # [M6], as `notify` belongs to its publisher
    create_as_publish_py_did(vhost, {})
    with channel(vhost) as ch:
        ch.exchange_declare("notify", "topic", durable=True)  # as that publisher declares it
    service = start(root, vhost, [AMQP_DISPATCHER, "--config", "complete-config.yml"])
    services.append(service)
    service.wait_ready()
    publish(vhost, "transaction.created", ["ok-1", "fail-1"], exchange="notify")
    publish(vhost, "click.banner", ["publish-1"], exchange="notify")
    wait_settled(vhost, "notify_mat_job", "notify_apsalar_job")
    assert service.stop() == 0
    # Both queues got every message through their wildcard bindings; the first consumer failed once.
    log = service.log
    assert [lines_with(log, f"Consuming message b'{body}'") for body in ("ok-1", "fail-1", "publish-1")] == [2, 3, 2]
    # Both queues durable, and no x- argument sent for the null x_* keys, as the original did.
    queues = rabbitmqctl("list_queues", "-p", vhost, "-q", "--no-table-headers", "name", "durable", "arguments")
    assert sorted(queues.splitlines()) == ["notify_apsalar_job\ttrue\t[]", "notify_mat_job\ttrue\t[]"]


# 0.3.3 to 0.10: the examples/ folder, run as `make example` did.

LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (\S+) \[pid:\d+\] - ([A-Z]+) - (.*)$")


def test_the_examples_of_0_3_to_0_10_run_as_make_example_did(tmp_path, vhost, services) -> None:
    root = migrated("examples_0_3", tmp_path / "project")  # [M1] and [M2] only
    create_as_publish_py_did(vhost, {"test_queue": "test_key"})
    command = [AMQP_DISPATCHER, "--config", "amqp-dispatcher-config.yml"]
    service = start(root / "examples", vhost, command, PYTHONPATH=".")
    services.append(service)
    service.wait_ready()
    publish(vhost, "test_key", ["msg-1", "fail-1", "msg-2", "fail-2"], exchange="test_exchange")
    wait_settled(vhost, "test_queue")
    assert service.stop() == 0
    # The startup handler's format, on its own line, the dispatcher's and the consumer's (once each).
    lines = [match.groups() for match in map(LOG_LINE.match, service.log.splitlines()) if match]
    assert ("amqp-dispatcher", "DEBUG", "Logging configured by the startup handler") in lines
    assert [line for line in lines if line[2].startswith("ready: ")] == [
        ("amqp-dispatcher.connection", "INFO", "ready: 1 consumer entries with 2 instances")
    ]
    assert lines.count(("example_consumer", "DEBUG", "Consuming message: b'fail-1'")) == 2
    assert lines.count(("example_consumer", "DEBUG", "Done sleeping")) == 4
    assert any(name == "amqp-dispatcher.pool" and "reached no queue" in text for name, _, text in lines)


# 0.11 to 0.12: passive: true and an undeclared exchange.


def examples_0_11(target: Path, *labels: str) -> Path:
    """0.11-0.12's examples/: the 0.5-0.12 startup handler and consumer, with 0.11's config."""
    root = migrated("examples_0_3", target)
    shutil.copy(MIGRATION / "examples_0_11" / "amqp-dispatcher-config.yml", root / "examples")
    for label in labels:
        EDITS[label](root)
    return root / "examples"


def test_the_example_of_0_11_runs_after_m3_and_m6(tmp_path, vhost, services) -> None:
    command = [AMQP_DISPATCHER, "--config", "amqp-dispatcher-config.yml"]
    status, log = run_to_the_end(examples_0_11(tmp_path / "as-is"), vhost, command)
    assert status == 3 and "warning[W404]" in log and "warning[W408]" in log, log
    assert "remove passive: true from queue 'test_queue' in the config" in log
    status, log = run_to_the_end(examples_0_11(tmp_path / "m3", "M3"), vhost, command)
    assert status == 3 and "no exchange 'test'" in log, log

    create_as_publish_py_did(vhost, {})  # test_exchange, which the consumer publishes to
    service = start(examples_0_11(tmp_path / "m3-m6", "M3", "M6"), vhost, [*command, "--connection", "pika"])
    services.append(service)
    service.wait_ready()
    publish(vhost, "queue", ["msg-1", "fail-1", "msg-2"], exchange="test")
    wait_settled(vhost, "test_queue")
    assert service.stop() == 0
    log = service.log
    assert lines_with(log, "--connection pika is ignored") == 1
    assert lines_with(log, "Consuming message: b'fail-1'") == 2
    assert "routing key 'dead_rk' reached no queue" in log


# 1.x: examples/ and the test consumers, run from the project root.

VERSION_1_EDITS = ("M3", "M7", "M8", "M9")


def dispatcher(config: str) -> list[str]:
    """1.x's Docker entry point."""
    return [sys.executable, "-m", "amqpdispatcher.dispatcher", "--config", config]


def test_1x_consumers_as_they_are_fail_the_build_naming_the_edits(tmp_path) -> None:
    root = migrated("version_1", tmp_path / "project")
    command = [*dispatcher("./examples/amqp-dispatcher-config.yml"), "--validate"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "error[E202]" in result.stderr and "No module named 'amqpdispatcher.amqp_proxy'" in result.stderr
    assert "remove the import" in result.stderr and "docs/migrating.md" in result.stderr
    assert "error[E207]" in result.stderr and "remove async and await" in result.stderr


def test_the_1x_example_runs_after_the_edits(tmp_path, vhost, services) -> None:
    root = migrated("version_1", tmp_path / "project", *VERSION_1_EDITS)
    service = start(root, vhost, dispatcher("./examples/amqp-dispatcher-config.yml"))
    services.append(service)
    service.wait_ready()
    publish(vhost, "test_queue", [b"{}"] * 6, exchange="amq.direct")
    publish(vhost, "second_test_queue", [b"{}"] * 8, exchange="amq.direct")  # acked for the consumer
    wait_settled(vhost, "test_queue", "second_test_queue")
    assert service.stop() == 0
    log = service.log
    assert re.search(r" INFO amqp-dispatcher\[\d+\]: we started up$", log, re.MULTILINE), log
    assert "exchange 'amq.direct' with routing key 'dead_rk' reached no queue" in log
    assert " ERROR " not in log


def test_the_1x_multi_config_test_runs_after_the_edits(tmp_path, vhost, services) -> None:
    root = migrated("version_1", tmp_path / "project", *VERSION_1_EDITS)
    service = start(root, vhost, dispatcher("./legacy_tests/configuration/multi-config-test.yml"))
    services.append(service)
    service.wait_ready()
    assert "warning[W401]" in service.log  # prefetch_count 1 is below consumer_count 2
    publish(vhost, "queue", [b"{}"] * 4, exchange="amq.direct")  # one key, bound to both queues
    wait_settled(vhost, "test_queue", "second_test_queue")
    assert service.stop() == 0
    assert " ERROR " not in service.log


def test_the_1x_test_configs_run_after_the_edits(tmp_path, vhost, services) -> None:
    root = migrated("version_1", tmp_path / "project", *VERSION_1_EDITS)
    consumption, proxy, disconnection = started = [
        start(root, vhost, dispatcher(f"./legacy_tests/integration/{name}-test.yml"))
        for name in ("consumption", "proxy", "disconnection")
    ]
    services.extend(started)
    for service in started:
        service.wait_ready()
    # As 1.x's bats tests published (message_sender.py: body b"{}" to amq.direct).
    for queue, number in {
        "con_queue_one": 5,
        "con_queue_two": 3,
        "immediate_queue_one": 5,
        "immediate_queue_two": 3,
        "main_proxy_queue": 5,
        "disco_queue": 5,
    }.items():
        publish(vhost, queue, [b"{}"] * number, exchange="amq.direct")

    # prefetch_count 0 means no limit: the broker hands every message over, and the forever
    # consumers start consumer_count of them, never to answer (publish_queue's are republished).
    handed_over = {
        "con_queue_one": (0, 5),
        "con_queue_two": (0, 3),
        "publish_queue": (0, 5),
        **dict.fromkeys(("immediate_queue_one", "immediate_queue_two", "main_proxy_queue", "disco_queue"), (0, 0)),
    }
    wait_until(lambda: queue_counts(vhost) == handed_over, message=f"queues at {handed_over}")
    wait_until(lambda: lines_with(disconnection.log, "TimedConsumer acked message") == 5)
    wait_until(lambda: lines_with(proxy.log, "ForeverConsumer receiving message") == 5)
    assert lines_with(proxy.log, "PublishConsumer receiving message") == 5
    assert disconnection.stop() == 0

    # SIGTERM returns the messages that never started: the forever consumers hold exactly theirs.
    for service in (consumption, proxy):
        service.signal(signal.SIGTERM)
    held = {**handed_over, "con_queue_one": (2, 3), "con_queue_two": (1, 2)}
    wait_until(lambda: queue_counts(vhost) == held, message=f"queues at {held}")
    wait_until(lambda: lines_with(consumption.log, "ForeverConsumer receiving message") == 3)
    wait_until(lambda: lines_with(consumption.log, "ForeverConsumer2 receiving message") == 2)
    # A second SIGTERM stops them before shutdown_timeout (30 s), and what they held goes back.
    for service in (consumption, proxy):
        service.wait_for_log("SIGTERM received: finishing in-flight messages")
        service.signal(signal.SIGTERM)
    assert [service.wait(20) for service in (consumption, proxy)] == [1, 1]
    returned = {**handed_over, "con_queue_one": (5, 0), "con_queue_two": (3, 0), "publish_queue": (5, 0)}
    wait_until(lambda: queue_counts(vhost) == returned, message=f"queues at {returned}")
