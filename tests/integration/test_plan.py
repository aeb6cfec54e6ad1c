"""`python -m service plan` against the real broker: what it reports, its exit statuses, that it
changes nothing, that its rules are RabbitMQ's own, and, on a private node with the management
plugin, operator policies and bindings the config does not know."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.errors import HandshakeRefused
from amqp_dispatcher.runtime.management import EXCHANGE_ARGUMENTS, QUEUE_ARGUMENTS, Management, differing
from amqp_dispatcher.runtime.settings import parse_url

from .harness import HOST, PORT, Project, channel, connections, create_vhost, rabbitmqctl, url, wait_until
from .management_broker import ManagementBroker, start_management_broker
from .private_node import free_ports, require_tools
from .tls_broker import _make_certificates

pytestmark = pytest.mark.broker

CONFIG = """
name: planned
consumers:
  - consumer: workers:Recorder
    queue: orders
    on_error: retry
    retry: {max_attempts: 2, delays: [1]}
exchanges:
  - exchange: shop
    type: topic
queues:
  - queue: orders
    x_max_length: 100
    bindings:
      - exchange: shop
        routing_key: order.*
"""
OBJECTS = [
    ("exchange", "shop"),
    ("queue", "orders"),
    ("queue", "orders.retry.1s"),
    ("queue", "orders.parked"),
    ("binding", "shop -> orders"),
]


def plan(built: Project, environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service", "plan", *arguments]
    return subprocess.run(command, cwd=built.root, env=environment, capture_output=True, text=True, timeout=60)


def planned(
    built: Project, environment: dict[str, str], *arguments: str, text: bool = False
) -> tuple[int, dict[str, Any]]:
    """The exit status and the JSON document; with `text`, the text form is checked to list the
    same objects with the same markers and to exit alike."""
    found = plan(built, environment, *arguments, "--format", "json")
    assert "Traceback" not in found.stderr
    document = json.loads(found.stdout)
    if text:
        printed = plan(built, environment, *arguments)
        assert printed.returncode == found.returncode, printed.stderr
        for item in document["objects"]:
            assert f"  {item['marker']} {item['kind']} {item['name']}" in printed.stdout
    return found.returncode, document


def statuses(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(item["kind"], item["name"], item["status"]) for item in document["objects"]]


def snapshot(vhost: str) -> dict[str, list[str]]:
    """Every queue, exchange and binding of the vhost with its properties, as rabbitmqctl lists them."""
    listings = {
        "queues": ("list_queues", "name", "durable", "auto_delete", "exclusive", "arguments"),
        "exchanges": ("list_exchanges", "name", "type", "durable", "auto_delete", "internal", "arguments"),
        "bindings": ("list_bindings", "source_name", "destination_name", "routing_key", "arguments"),
    }
    return {
        what: sorted(rabbitmqctl(command, "-p", vhost, *fields, "--no-table-headers", "--quiet").splitlines())
        for what, (command, *fields) in listings.items()
    }


def test_on_an_empty_vhost_everything_will_be_created(project, vhost) -> None:
    built = project(CONFIG)
    status, document = planned(built, built.environment(vhost), text=True)
    assert status == 0
    assert statuses(document) == [(kind, name, "create") for kind, name in OBJECTS]
    assert document["bindings_listed"] is False and document["management_api"] is None
    assert document["broker"] == f"amqp://guest@{HOST}:{PORT}/{vhost}"


def test_after_the_service_ran_everything_matches(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    assert service.stop() == 0
    status, document = planned(built, built.environment(vhost))
    assert status == 0
    expected = [(kind, name, "match") for kind, name in OBJECTS[:-1]] + [("binding", "shop -> orders", "unchecked")]
    assert statuses(document) == expected


def test_queues_declared_otherwise_are_conflicts_named_with_both_values(project, vhost) -> None:
    built = project(CONFIG)
    with channel(vhost) as ch:
        ch.queue_declare("orders", durable=True, arguments={"x-max-length": 50})
        ch.queue_declare("orders.parked", durable=False)
    status, document = planned(built, built.environment(vhost))
    assert status == 1
    conflicts = {item["name"]: item["differences"] for item in document["objects"] if item["status"] == "conflict"}
    assert sorted(conflicts) == ["orders", "orders.parked"]
    [max_length] = conflicts["orders"]
    assert (max_length["property"], max_length["broker"], max_length["config"]) == ("x-max-length", 50, 100)
    [durable] = conflicts["orders.parked"]
    assert (durable["property"], durable["broker"], durable["config"]) == ("durable", False, True)
    assert "406 PRECONDITION_FAILED" in durable["reason"]
    text = plan(built, built.environment(vhost)).stdout
    assert "  ! queue orders " in text and "x-max-length: broker 50, config 100" in text


def test_plan_changes_nothing_on_the_broker(project, vhost) -> None:
    """Missing, matching and conflicting entities alike: the vhost lists the same before and after,
    and plan's connection is gone."""
    built = project(CONFIG)
    with channel(vhost) as ch:
        ch.exchange_declare("shop", "topic", durable=True)
        ch.queue_declare("orders", durable=True, arguments={"x-max-length": 7, "x-message-ttl": 1000})
        ch.queue_declare("orders.retry.1s", durable=False, auto_delete=True)
        ch.queue_bind("orders", "shop", "stray.#")
    before = snapshot(vhost)
    assert any(line.startswith("orders\t") for line in before["queues"])
    status, _ = planned(built, built.environment(vhost))
    assert status == 1
    assert snapshot(vhost) == before
    wait_until(lambda: not connections(vhost, "name"), 5, message="plan's connection to close")


def test_an_unreachable_broker_exits_3_in_one_line(project) -> None:
    built = project(CONFIG)
    [port] = free_ports(1)
    environment = built.environment(RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{port}/?connection_timeout=2")
    found = plan(built, environment)
    assert found.returncode == 3
    assert (
        found.stderr.startswith("plan: cannot connect to amqp://guest@127.0.0.1:") and "Traceback" not in found.stderr
    )
    assert found.stdout == ""


def test_wrong_credentials_exit_3_without_showing_the_password(project, vhost) -> None:
    built = project(CONFIG)
    found = plan(built, built.environment(RABBITMQ_URL=url(vhost, password="hunter2-wrong")))
    assert found.returncode == 3
    assert "refused the credentials of user 'guest'" in found.stderr
    assert "hunter2" not in found.stderr + found.stdout and "Traceback" not in found.stderr


# ---------------------------------------------------------------------------------------------
# The rules against RabbitMQ itself: a redeclaration fails exactly when management.differing says


CREATABLE = {  # values RabbitMQ accepts when it creates a classic queue
    "x-max-length": st.integers(0, 2) | st.just(2**40),
    "x-message-ttl": st.integers(0, 2),
    "x-dead-letter-exchange": st.sampled_from(["", "a"]),
    "x-single-active-consumer": st.booleans(),
    "x-overflow": st.sampled_from(["drop-head", "reject-publish"]),
    "x-queue-type": st.just("classic"),
    "x-unknown": st.integers(0, 1) | st.text(max_size=1),
}
ANY_VALUE = st.integers(0, 2) | st.just(2**40) | st.sampled_from(["", "a", "classic", "drop-head"]) | st.booleans()
ANY_VALUE |= st.sampled_from([b"a", None])


@pytest.fixture(scope="module")
def rules_channel() -> Iterator[Callable[[], Any]]:
    """Fresh channels on one connection to a vhost of their own (a 406 closes a channel)."""
    name = create_vhost()
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(HOST, PORT, virtual_host=name, credentials=pika.PlainCredentials("guest", "guest"))
    )
    try:
        yield connection.channel
    finally:
        connection.close()
        rabbitmqctl("delete_vhost", name)


def refused(redeclare: Callable[[], Any]) -> bool:
    try:
        redeclare()
    except pika.exceptions.ChannelClosedByBroker as closed:
        assert closed.reply_code == 406, closed
        return True
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.fixed_dictionaries({}, optional=CREATABLE),
    declared=st.dictionaries(st.sampled_from(sorted(CREATABLE)), ANY_VALUE, max_size=4),
)
def test_a_queue_redeclaration_fails_exactly_when_the_rules_say(rules_channel, existing, declared) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    rules_channel().queue_declare(name, durable=True, arguments=existing)
    ch = rules_channel()
    outcome = refused(lambda: ch.queue_declare(name, durable=True, arguments=declared))
    assert outcome == bool(differing(QUEUE_ARGUMENTS["classic"], existing, declared))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.fixed_dictionaries({}, optional={"alternate-exchange": st.sampled_from(["a", "b"]), "x-o": ANY_VALUE}),
    declared=st.dictionaries(st.sampled_from(["alternate-exchange", "x-o"]), ANY_VALUE, max_size=2),
)
def test_an_exchange_redeclaration_fails_exactly_when_the_rules_say(rules_channel, existing, declared) -> None:
    name = f"x-{uuid.uuid4().hex[:8]}"
    rules_channel().exchange_declare(name, "direct", arguments={k: v for k, v in existing.items() if v is not None})
    existing = {k: v for k, v in existing.items() if v is not None}
    ch = rules_channel()
    outcome = refused(lambda: ch.exchange_declare(name, "direct", arguments=declared))
    assert outcome == bool(differing(EXCHANGE_ARGUMENTS, existing, declared))


# ---------------------------------------------------------------------------------------------
# With the management API: a private node with the plugin, one for the module


@pytest.fixture(scope="module")
def management_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagementBroker]:
    require_tools("the management API plan test")
    with start_management_broker(tmp_path_factory.mktemp("management-node")) as node:
        yield node


def test_with_the_api_an_operator_policy_override_is_a_conflict_and_a_stray_binding_is_reported(
    project, management_node: ManagementBroker
) -> None:
    node, vhost = management_node, management_node.create_vhost(f"plan-{uuid.uuid4().hex[:6]}")
    node.ctl("set_operator_policy", "-p", vhost, "cap", "^orders$", '{"max-length":10}', "--apply-to", "queues")
    parameters = pika.URLParameters(node.amqp_url(vhost))
    with pika.BlockingConnection(parameters) as connection:
        ch = connection.channel()
        ch.exchange_declare("shop", "topic", durable=True)
        ch.queue_declare("orders", durable=True, arguments={"x-max-length": 100})  # as the config says
        ch.queue_bind("orders", "shop", "order.*")
        ch.queue_bind("orders", "shop", "stray.#")
    api = f"{node.management_url}/api/queues/{vhost}/orders"
    wait_until(lambda: _get(api).get("operator_policy") == "cap", 10, message="the operator policy to apply")
    built = project(CONFIG)
    environment = built.environment(RABBITMQ_URL=node.amqp_url(vhost))
    definitions = f"{node.management_url}/api/definitions/{vhost}"  # queues, exchanges, bindings, policies
    before = _get(definitions)

    status, document = planned(built, environment, "--management-url", node.management_url, text=True)
    assert status == 1
    assert document["bindings_listed"] is True
    assert document["management_api"] == f"http://guest@127.0.0.1:{node.management_port}"
    assert statuses(document) == [
        ("exchange", "shop", "match"),
        ("queue", "orders", "conflict"),
        ("queue", "orders.retry.1s", "create"),
        ("queue", "orders.parked", "create"),
        ("binding", "shop -> orders", "match"),
        ("binding", "shop -> orders", "unknown"),
    ]
    [override] = document["objects"][1]["differences"]
    assert (override["property"], override["broker"], override["config"]) == ("max-length", 10, 100)
    assert "operator policy 'cap'" in override["reason"]
    assert document["objects"][-1]["routing_key"] == "stray.#"
    assert _get(definitions) == before

    wrong = plan(built, environment, "--management-url", f"http://guest:not-it@127.0.0.1:{node.management_port}")
    assert wrong.returncode == 3 and "refused the credentials" in wrong.stderr and "not-it" not in wrong.stderr


def _get(address: str) -> dict[str, Any]:
    """GET from the private node's API, as guest."""
    request = urllib.request.Request(
        address, headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def test_an_https_api_is_verified_against_the_system_cas_and_the_amqps_cafile(tmp_path: Path) -> None:
    """An API whose certificate the system does not trust is a refusal (exit 3), unless the CA is
    the cafile of the service's amqps:// RABBITMQ_URL; verification cannot be turned off."""
    ca_file, _, server_cert, server_key = _make_certificates(tmp_path / "certs")
    server = HTTPServer(("127.0.0.1", 0), _Whoami)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert, server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"https://localhost:{server.server_address[1]}"
    try:
        plain = parse_url("amqp://guest:guest@localhost/", default_heartbeat=20)
        with pytest.raises(HandshakeRefused, match="failed verification"):
            Management.from_url(address, plain).check_access()
        trusting = parse_url(f"amqps://guest:guest@localhost/?cafile={ca_file}", default_heartbeat=20)
        Management.from_url(address, trusting).check_access()
    finally:
        server.shutdown()
        server.server_close()


class _Whoami(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"name": "guest"}')

    def log_message(self, *_: Any) -> None: ...
