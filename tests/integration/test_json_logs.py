"""LOG_FORMAT=json against the real broker: every line one JSON object, naming what it is about.

What operators rely on: a log shipper can parse every line the service writes; lines about a
consumer name its entry and queue, lines about a message its delivery tag, message id and
correlation id; an exception comes as text; a password never appears, in this format either.
"""

from __future__ import annotations

import json
import uuid

import pika
import pytest

from .harness import channel, rabbitmqctl, url, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
startup_timeout: 2
consumers:
  - consumer: workers:Recorder
    queue: work
queues:
  - queue: work
"""


def objects(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines()]


def test_every_line_is_a_json_object_and_message_lines_name_the_message(project, services, vhost) -> None:
    built = project(CONFIG)
    service = built.service(vhost, LOG_FORMAT="json").wait_ready()
    services.append(service)
    with channel(vhost) as ch:
        ch.confirm_delivery()
        properties = pika.BasicProperties(message_id="order-7", correlation_id="req-42", headers={"fail": True})
        ch.basic_publish("", "work", b"x", properties, mandatory=True)
    wait_until(lambda: "consume raised" in service.log)
    assert service.stop() == 0
    lines = objects(service.log)
    assert all({"time", "level", "logger", "process", "message"} <= set(line) for line in lines)
    ready = [line for line in lines if str(line["message"]).startswith("ready:")]
    assert ready and ready[0]["logger"] == "amqp-dispatcher.connection"
    (raised,) = [line for line in lines if str(line["message"]).startswith("consume raised on delivery")]
    assert (raised["consumer"], raised["queue"]) == ("workers:Recorder", "work")
    assert (raised["message_id"], raised["correlation_id"], raised["delivery_tag"]) == ("order-7", "req-42", 1)
    assert "RuntimeError: asked to fail" in str(raised["exception"])


def test_a_password_never_reaches_json_lines(project, services, vhost) -> None:
    user, password = f"amqpd-{uuid.uuid4().hex[:6]}", f"Pw-{uuid.uuid4().hex}"
    rabbitmqctl("add_user", user, password)
    try:
        built = project(CONFIG)
        wrong = built.service(None, LOG_FORMAT="json", RABBITMQ_URL=url(vhost, user=user, password=password + "-x"))
        unreachable = built.service(
            None, LOG_FORMAT="json", RABBITMQ_URL=url(vhost, user=user, password=password, hosts="127.0.0.1:1")
        )
        services.extend([wrong, unreachable])
        for service in (wrong, unreachable):
            assert service.wait(30) == 3
            assert password not in service.log and objects(service.log), service.log
            assert user in service.log, "the user is named, so the operator knows who was refused"
    finally:
        rabbitmqctl("delete_user", user)


def test_an_unknown_log_format_exits_2_with_one_line(project, services, vhost) -> None:
    service = project(CONFIG).service(vhost, LOG_FORMAT="xml")
    services.append(service)
    assert service.wait(30) == 2
    assert "LOG_FORMAT='xml': use text (the default) or json" in service.log
