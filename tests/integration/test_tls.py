"""amqps:// with certificate verification, against a private RabbitMQ node with a TLS listener."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest

from .harness import wait_until
from .tls_broker import TlsBroker, start_tls_broker

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.each_transport]

CONFIG = """
consumers:
  - consumer: workers:Recorder
    queue: tls-work
queues:
  - queue: tls-work
"""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, broker: None) -> Iterator[TlsBroker]:
    with start_tls_broker(tmp_path_factory.mktemp("tls")) as node:
        yield node


def publish_over_tls(node: TlsBroker, body: str) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(node.ca_file))
    parameters = pika.ConnectionParameters(
        node.host, node.tls_port, ssl_options=pika.SSLOptions(context, server_hostname=node.host)
    )
    connection = pika.BlockingConnection(parameters)
    try:
        connection.channel().basic_publish("", "tls-work", body)
    finally:
        connection.close()


def test_amqps_verifies_the_broker_certificate_against_cafile(project, services, tls_broker: TlsBroker) -> None:
    built = project(CONFIG)
    service = built.service(None, RABBITMQ_URL=f"{tls_broker.amqps_url}?cafile={tls_broker.ca_file}").wait_ready()
    services.append(service)
    assert f"against amqps://guest@localhost:{tls_broker.tls_port}/" in service.log
    publish_over_tls(tls_broker, "secure")
    wait_until(lambda: built.events("end"))
    assert service.stop() == 0


def test_a_certificate_from_another_ca_is_refused_with_exit_3(project, services, tls_broker: TlsBroker) -> None:
    built = project(CONFIG)
    service = built.service(None, RABBITMQ_URL=f"{tls_broker.amqps_url}?cafile={tls_broker.other_ca_file}")
    services.append(service)
    started = time.monotonic()
    assert service.wait(60) == 3
    assert time.monotonic() - started < 30, "at once: retrying cannot fix a certificate (startup_timeout is 60 s)"
    assert "the broker's TLS certificate failed verification" in service.log
    assert "self-signed certificate in certificate chain" in service.log or "unable to get" in service.log


def test_without_cafile_the_system_trust_store_refuses_a_private_ca(project, services, tls_broker: TlsBroker) -> None:
    built = project(CONFIG)
    service = built.service(None, RABBITMQ_URL=tls_broker.amqps_url)
    services.append(service)
    assert service.wait(60) == 3
    assert "failed verification" in service.log


def test_verify_none_skips_verification_when_asked(project, services, tls_broker: TlsBroker) -> None:
    built = project(CONFIG)
    service = built.service(None, RABBITMQ_URL=f"{tls_broker.amqps_url}?verify=verify_none").wait_ready()
    services.append(service)
    assert service.stop() == 0
