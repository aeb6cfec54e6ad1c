"""Connection settings against the real broker: URL forms, variables, refusals, secrecy."""

from __future__ import annotations

import time
import uuid

import pytest

from . import harness
from .harness import publish, rabbitmqctl, url, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
name: {name}
heartbeat: 7
startup_timeout: {startup_timeout}
consumers:
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: work
"""


def build(project, name: str = "conn-test", startup_timeout: float = 60):  # type: ignore[no-untyped-def]
    return project(CONFIG.format(name=name, startup_timeout=startup_timeout))


def connections(vhost: str) -> list[dict[str, str]]:
    rows = harness.connections(vhost, "user", "timeout", "client_properties")
    return [{"vhost": vhost, **row} for row in rows]


@pytest.mark.each_transport
def test_a_url_with_several_hosts_connects_to_one_that_answers(project, services, vhost) -> None:
    built = build(project)
    hosts = "127.0.0.1:1,127.0.0.1:5672"  # port 1 refuses; the hosts are tried in random order
    service = built.service(None, RABBITMQ_URL=url(vhost, hosts=hosts)).wait_ready()
    services.append(service)
    assert "connected to 127.0.0.1:5672" in service.log
    publish(vhost, "work", ["hello"])
    wait_until(lambda: built.events("end"))


def test_a_vhost_with_a_slash_is_percent_encoded_in_the_url(project, services) -> None:
    vhost = f"team/orders-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        built = build(project)
        assert "%2F" in url(vhost)
        services.append(built.service(vhost).wait_ready())
        assert [row["vhost"] for row in connections(vhost)] == [vhost]
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.mark.each_transport
def test_separate_variables_and_heartbeat_precedence(project, services, vhost) -> None:
    built = build(project)
    environment = {
        "RABBITMQ_HOST": "127.0.0.1",
        "RABBITMQ_PORT": "5672",
        "RABBITMQ_USER": "guest",
        "RABBITMQ_PASS": "guest",
        "RABBITMQ_VHOST": vhost,
    }
    services.append(built.service(None, **environment).wait_ready())
    assert [row["timeout"] for row in connections(vhost)] == ["7"], "the config's heartbeat"
    services.pop().stop()
    services.append(built.service(None, RABBITMQ_HEARTBEAT="5", **environment).wait_ready())
    assert [row["timeout"] for row in connections(vhost)] == ["5"], "RABBITMQ_HEARTBEAT overrides it"
    services.pop().stop()
    services.append(built.service(None, RABBITMQ_URL=url(vhost) + "?heartbeat=9").wait_ready())
    assert [row["timeout"] for row in connections(vhost)] == ["9"], "as does ?heartbeat= in the URL"


def test_the_connection_name_shows_service_host_pid_and_config_hash(project, services, vhost) -> None:
    built = build(project, name="billing-service")
    service = built.service(vhost).wait_ready()
    services.append(service)
    (row,) = connections(vhost)
    import socket

    sha = (built.root / "service" / "__init__.py").read_text().split("config sha256: ")[1][:12]
    expected = f"billing-service on {socket.gethostname()} pid {service.process.pid} config {sha}"
    assert expected in row["client_properties"]


def test_a_password_never_reaches_the_logs_or_the_artifact(project, services, vhost) -> None:
    user, password = f"amqpd-{uuid.uuid4().hex[:6]}", f"Pw-{uuid.uuid4().hex}"
    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        built = build(project, startup_timeout=2)
        # A good run (with a publish, so the publishing connection opens too) and two failing ones.
        good = built.service(None, RABBITMQ_URL=url(vhost, user=user, password=password)).wait_ready()
        publish(
            vhost,
            "work",
            ["x"],
            headers={"publish": {"exchange": "", "routing_key": "work", "body": "y", "headers": None}},
        )
        wait_until(lambda: len(built.events("end")) >= 2)
        good.stop()
        wrong = built.service(None, RABBITMQ_URL=url(vhost, user=user, password=password + "-wrong"))
        assert wrong.wait(30) == 3
        unreachable = built.service(None, RABBITMQ_URL=url(vhost, user=user, password=password, hosts="127.0.0.1:1"))
        assert unreachable.wait(30) == 3
        for service in (good, wrong, unreachable):
            assert password not in service.log
            assert user in service.log, "the user is named, so the operator knows who was refused"
        for path in (built.root / "service").rglob("*"):
            assert password not in path.read_text(errors="replace")
    finally:
        rabbitmqctl("delete_user", user)


@pytest.mark.each_transport
def test_wrong_credentials_exit_3_at_once(project, services, vhost) -> None:
    built = build(project)
    service = built.service(None, RABBITMQ_URL=url(vhost, password="not-the-password"))
    services.append(service)
    started = time.monotonic()
    assert service.wait(30) == 3
    assert time.monotonic() - started < 10, "retrying cannot fix credentials"
    assert "the broker refused the credentials of user 'guest'" in service.log


@pytest.mark.each_transport
def test_a_missing_vhost_exits_3_at_once(project, services, broker) -> None:
    built = build(project)
    service = built.service(None, RABBITMQ_URL=url(f"no-such-vhost-{uuid.uuid4().hex[:6]}"))
    services.append(service)
    assert service.wait(30) == 3
    assert "refused access to vhost 'no-such-vhost-" in service.log


def test_an_unreachable_broker_is_retried_for_startup_timeout_then_exit_3(project, services, broker) -> None:
    built = build(project, startup_timeout=3)
    service = built.service(None, RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/")
    services.append(service)
    started = time.monotonic()
    assert service.wait(30) == 3
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 15
    retries = [line for line in service.log.splitlines() if "retrying in" in line]
    assert len(retries) >= 2, "it retried, with backoff"
    assert "gave up after 3 s (startup_timeout)" in service.log
    assert "Connection refused" in service.log


@pytest.mark.parametrize(
    "environment,expected",
    [
        ({"RABBITMQ_URL": "amqp://h/a/b"}, "percent-encode each '/' in it as %2F"),
        ({"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:٥٦٧٢/"}, "is not a port number from 1 to 65535"),
        ({"RABBITMQ_HEARTBEAT": "²"}, "RABBITMQ_HEARTBEAT: '²' is not a number of seconds"),
        ({"RABBITMQ_URL": "amqps://127.0.0.1/?cafile=/no/such/ca.pem"}, "cafile in RABBITMQ_URL: '/no/such/ca.pem'"),
        ({"RABBITMQ_URL": "amqp://h1:5673,h2/"}, "some hosts have a port and others do not"),
        ({"DISPATCHER_TRANSPORT": "kombu"}, "DISPATCHER_TRANSPORT='kombu' is not a transport: use one of pamqp, pika"),
    ],
)
def test_every_bad_setting_is_one_line_and_exit_2(project, broker, environment, expected) -> None:
    built = build(project)
    service = built.service(None, **environment)
    assert service.wait(30) == 2
    lines = service.log.splitlines()
    assert len(lines) == 1 and expected in lines[0] and " ERROR " in lines[0], service.log


@pytest.mark.each_transport
def test_a_tls_handshake_that_cannot_succeed_exits_3_at_once(project, broker) -> None:
    """amqps:// against the plain AMQP port: retrying cannot fix it, so no waiting out startup_timeout."""
    built = build(project, startup_timeout=60)
    service = built.service(None, RABBITMQ_URL="amqps://guest:guest@127.0.0.1:5672/?verify=verify_none")
    started = time.monotonic()
    assert service.wait(60) == 3
    assert time.monotonic() - started < 30, "long before startup_timeout"
    assert "the TLS handshake failed" in service.log and "is the port a TLS port" in service.log
    assert "Traceback" not in service.log


SECRET = "S3cr3tToken"


@pytest.mark.parametrize(
    "shape",
    [
        "amqp://guest:{secret}/x@127.0.0.1:5672/",  # '/' unencoded in the password
        "amqp://guest:{secret}?x@127.0.0.1:5672/",  # '?'
        "amqp://guest:{secret}#x@127.0.0.1:5672/",  # '#'
        "amqp://guest:{secret}@127.0.0.1:5672/%ff",  # a vhost that is not UTF-8
        "amqp://guest:{secret}@127.0.0.1:notaport/",
        "amqp://guest:{secret}@127.0.0.1:1/",  # unreachable: retried, then exit 3
        "amqp://guest:{secret}@127.0.0.1:5672/",  # refused credentials: exit 3
        "amqps://guest:{secret}@127.0.0.1:5672/?verify=verify_none",  # a TLS handshake that fails
    ],
)
def test_no_url_shape_puts_the_password_in_the_output(project, broker, shape: str) -> None:
    built = build(project, startup_timeout=2)
    service = built.service(None, RABBITMQ_URL=shape.format(secret=SECRET))
    status = service.wait(60)
    assert status in (2, 3), service.log
    assert "S3cr" not in service.log and "Token" not in service.log, service.log
