"""Start and stop: the startup handler, topology, graceful shutdown, idle cost, concurrency."""

from __future__ import annotations

import signal
import time

import pytest

from .harness import Project, channel, publish, queue_depth, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker


def test_the_startup_handler_runs_once_before_connecting(project, services, vhost) -> None:
    built = project("""
startup_handler: workers:startup
consumers:
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: work
""")
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert [event["event"] for event in built.events()][:2] == ["startup", "init"]
    assert len(built.events("startup")) == 1
    assert service.log.index("connected to") > service.log.index("starting")


def test_a_failing_startup_handler_exits_2_with_its_traceback(project, services, vhost) -> None:
    built = project("""
startup_handler: workers:failing_startup
consumers:
  - consumer: workers:Recorder
    queue: work
""")
    service = built.service(vhost)
    services.append(service)
    assert service.wait(30) == 2
    assert "the startup handler workers:failing_startup raised; stopping" in service.log
    assert "RuntimeError: cannot start: the database is down" in service.log
    assert "Traceback" in service.log
    assert "connected to" not in service.log


TOPOLOGY = """
consumers:
  - consumer: workers:Recorder
    queue: orders
exchanges:
  - exchange: shop
    type: topic
  - exchange: audit
    type: fanout
    durable: false
queues:
  - queue: orders
    x_max_length: 100
    x_message_ttl: 60000
    x_dead_letter_exchange: audit
    arguments:
      x-max-priority: 4
    bindings:
      - exchange: shop
        routing_key: order.*
  - queue: audit-log
    x_queue_type: quorum
    bindings:
      - exchange: audit
"""


def test_exchanges_queues_and_bindings_are_declared_before_consuming(project, services, vhost) -> None:
    built = project(TOPOLOGY)
    services.append(built.service(vhost).wait_ready())
    exchanges = rabbitmqctl("list_exchanges", "-p", vhost, "name", "type", "durable")
    assert "shop\ttopic\ttrue" in exchanges and "audit\tfanout\tfalse" in exchanges
    queues = rabbitmqctl("list_queues", "-p", vhost, "name", "durable", "arguments", "type")
    orders = next(line for line in queues.splitlines() if line.startswith("orders\t"))
    for argument in (
        '"x-max-length",100',
        '"x-message-ttl",60000',
        '"x-dead-letter-exchange","audit"',
        '"x-max-priority",4',
    ):
        assert argument.replace('"', "") in orders.replace('"', "").replace("<<", "").replace(">>", ""), orders
    assert any(line.startswith("audit-log\ttrue") and line.endswith("quorum") for line in queues.splitlines())
    bindings = rabbitmqctl("list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key")
    assert "shop\torders\torder.*" in bindings and "audit\taudit-log\t" in bindings
    publish(vhost, "order.created", ["routed"], exchange="shop")
    wait_until(lambda: built.events("end"))


def test_passive_declarations_only_check(project, services, vhost) -> None:
    with channel(vhost) as ch:
        ch.queue_declare("existing", durable=False, arguments={"x-max-length": 3})
    built = project("""
consumers:
  - consumer: workers:Recorder
    queue: existing
queues:
  - queue: existing
    passive: true
""")
    services.append(built.service(vhost).wait_ready())
    assert "x-max-length" in rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")


@pytest.mark.parametrize(
    "setup,config,expected",
    [
        pytest.param(
            {"queue": "orders", "arguments": {"x-max-length": 5}},
            "queues:\n  - queue: orders\n    x_max_length: 10\n",
            [
                "declaring queue 'orders'",
                "406 PRECONDITION_FAILED",
                "inequivalent arg 'x-max-length'",
                "change the config to match",
            ],
            id="406-mismatch",
        ),
        pytest.param(
            None,
            "queues:\n  - queue: orders\n    passive: true\n",
            [
                "declaring queue 'orders'",
                "404 NOT_FOUND",
                "no queue 'orders'",
                "passive: true only checks that it does",
                "the original amqp-dispatcher ignored passive and created the queue",
                "remove passive: true from queue 'orders' in the config",
            ],
            id="404-passive-queue",
        ),
        pytest.param(
            None,
            "exchanges:\n  - exchange: elsewhere\n    passive: true\nqueues:\n  - queue: orders\n",
            ["declaring exchange 'elsewhere'", "404 NOT_FOUND", "no exchange 'elsewhere'", "passive: true only checks"],
            id="404-passive-exchange",
        ),
        pytest.param(
            None,
            "",
            ["consuming from 'orders'", "404 NOT_FOUND", "no queue 'orders'", "declare it under queues in the config"],
            id="404-undeclared-queue",
        ),
        pytest.param(
            None,
            "queues:\n  - queue: orders\n    bindings:\n      - exchange: elsewhere\n",
            ["binding queue 'orders' to exchange 'elsewhere'", "404 NOT_FOUND", "the config does not declare it"],
            id="404-binding-to-an-undeclared-exchange",
        ),
    ],
)
def test_a_refused_declaration_stops_the_service_with_exit_3(project, services, vhost, setup, config, expected) -> None:
    if setup:
        with channel(vhost) as ch:
            ch.queue_declare(setup["queue"], durable=True, arguments=setup["arguments"])
    built = project("consumers:\n  - consumer: workers:Recorder\n    queue: orders\n" + config)
    service = built.service(vhost)
    services.append(service)
    started = time.monotonic()
    assert service.wait(30) == 3
    assert time.monotonic() - started < 15, "a refusal stops the service at once, without retrying"
    stopping = [line for line in service.log.splitlines() if " ERROR amqp-dispatcher[" in line]
    assert len(stopping) == 1, service.log
    assert "WARNING" not in service.log and "Traceback" not in service.log, "one clear error line, no noise"
    for fragment in expected:
        assert fragment in stopping[0], stopping[0]
    assert built.events("shutdown"), "instances are shut down before exiting"


def test_a_403_on_declare_stops_the_service(project, services, vhost) -> None:
    rabbitmqctl("set_permissions", "-p", vhost, "guest", "^amq\\.gen.*$", ".*", ".*")
    built = project("consumers:\n  - consumer: workers:Recorder\n    queue: orders\nqueues:\n  - queue: orders\n")
    service = built.service(vhost)
    services.append(service)
    assert service.wait(30) == 3
    assert "403 ACCESS_REFUSED" in service.log and "configure permission" in service.log


SLOW = """
shutdown_timeout: {timeout}
consumers:
  - consumer: workers:Recorder
    queue: work
    consumer_count: 50
    prefetch_count: 100
queues:
  - queue: work
"""


def test_sigterm_drains_in_flight_messages_and_returns_the_rest(project, services, vhost) -> None:
    built = project(SLOW.format(timeout=30))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", [f"slow {n}" for n in range(80)], headers={"sleep": "1.5"})
    wait_until(lambda: len(built.events("start")) >= 50, message="50 handlers mid-message")
    time.sleep(0.2)
    service.signal(signal.SIGTERM)
    assert service.wait(30) == 0
    ends = sorted(event["body"] for event in built.events("end"))
    starts = sorted(event["body"] for event in built.events("start"))
    assert len(starts) == 50 and ends == starts, "every started message finished, none started after SIGTERM"
    assert queue_depth(vhost, "work") == 30, "the 30 prefetched but unstarted messages went back to the queue"
    with channel(vhost) as ch:
        redelivered = []
        while True:
            method, _, body = ch.basic_get("work", auto_ack=True)
            if method is None:
                break
            redelivered.append(body.decode())
    assert not set(redelivered) & set(starts), "no finished message is delivered again"
    assert len(set(redelivered) | set(starts)) == 80, "no message is lost"
    shutdowns = built.events("shutdown")
    assert sorted(event["instance"] for event in shutdowns) == sorted(
        event["instance"] for event in built.events("init")
    )
    assert all(event["exception"] is None for event in shutdowns), "shutdown(None), once per live instance"
    assert "returned 30 prefetched messages to the queue" in service.log


def test_the_drain_timeout_exits_1_and_the_broker_requeues(project, services, vhost) -> None:
    built = project(SLOW.format(timeout=1))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", ["very slow"], headers={"sleep": "60"})
    wait_until(lambda: built.events("start"))
    service.signal(signal.SIGTERM)
    assert service.wait(20) == 1
    assert "shutdown_timeout (1 s) passed with messages in flight" in service.log
    assert queue_depth(vhost, "work") == 1, "the unfinished message is back in the queue"


def test_a_second_signal_exits_1_at_once(project, services, vhost) -> None:
    built = project(SLOW.format(timeout=60))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", ["very slow"], headers={"sleep": "60"})
    wait_until(lambda: built.events("start"))
    service.signal(signal.SIGTERM)
    service.wait_for_log("SIGTERM received: finishing in-flight messages")
    started = time.monotonic()
    service.signal(signal.SIGINT)
    assert service.wait(20) == 1
    assert time.monotonic() - started < 10
    assert "SIGINT received again: stopping now" in service.log
    wait_until(lambda: queue_depth(vhost, "work") == 1)


def test_sigint_stops_as_sigterm_does(project, services, vhost) -> None:
    built = project(SLOW.format(timeout=10))
    service = built.service(vhost).wait_ready()
    services.append(service)
    service.signal(signal.SIGINT)
    assert service.wait(20) == 0
    assert "SIGINT received" in service.log and "Traceback" not in service.log
    assert len(built.events("shutdown")) == 50


def test_an_idle_service_uses_under_one_percent_of_a_core(project, services, vhost) -> None:
    config = "consumers:\n" + "".join(
        f"  - consumer: workers:Recorder\n    queue: idle-{n}\n    consumer_count: 4\n    prefetch_count: 4\n"
        for n in range(10)
    )
    config += "queues:\n" + "".join(f"  - queue: idle-{n}\n" for n in range(10))
    built = project(config)
    service = built.service(vhost).wait_ready()
    services.append(service)
    time.sleep(1)  # let start-up settle
    before, started = service.cpu_seconds(), time.monotonic()
    time.sleep(5)
    cpu = service.cpu_seconds() - before
    elapsed = time.monotonic() - started
    assert cpu / elapsed < 0.01, f"idle CPU {cpu / elapsed:.2%} of a core"


def test_handlers_that_sleep_with_gevent_run_concurrently_without_monkey_patching(project, services, vhost) -> None:
    built = project(SLOW.format(timeout=10).replace("consumer_count: 50", "consumer_count: 10"))
    service = built.service(vhost).wait_ready()
    services.append(service)
    publish(vhost, "work", [f"n{n}" for n in range(10)], headers={"sleep": "1"})
    wait_until(lambda: len(built.events("end")) == 10)
    # Concurrency, not timing: count how many handlers were inside consume at the same moment.
    inside, most = 0, 0
    for event in built.events():
        if event["event"] == "start":
            inside += 1
            most = max(most, inside)
        elif event["event"] == "end":
            inside -= 1
    assert most == 10
    assert "patch_all" not in (built.root / "service" / "__init__.py").read_text()


def test_monkey_patch_true_patches_before_user_code(project, services, vhost) -> None:
    built: Project = project(
        SLOW.format(timeout=10).replace("shutdown_timeout", "monkey_patch: true\nshutdown_timeout")
    )
    probe = "import socket\nimport gevent.socket\nemit('patched', value=socket.socket is gevent.socket.socket)\n"
    (built.root / "workers.py").write_text((built.root / "workers.py").read_text() + "\n" + probe)
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert [event["value"] for event in built.events("patched")] == [True]
