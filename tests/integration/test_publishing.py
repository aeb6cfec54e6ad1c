"""Publishing from consume: its own lazy connection, confirms, and clear errors."""

from __future__ import annotations

import json

import pytest

from .harness import channel, connections, drain, publish, queue_depth, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.each_transport]

CONFIG = """
consumers:
  - consumer: workers:Publisher
    queue: orders
queues:
  - queue: orders
  - queue: receipts
  - queue: full
    arguments:
      x-max-length: 0
      x-overflow: reject-publish
"""


def ask(vhost: str, exchange: str, routing_key: str, body: str, **properties: object) -> None:
    publish(
        vhost,
        "orders",
        [json.dumps({"exchange": exchange, "routing_key": routing_key, "body": body, "properties": properties})],
    )


def connection_count(vhost: str) -> int:
    return len(connections(vhost, "name"))


def test_the_publishing_connection_opens_on_first_use_and_publish_waits_for_the_confirm(
    project, services, vhost
) -> None:
    built = project(CONFIG)
    services.append(built.service(vhost).wait_ready())
    assert connection_count(vhost) == 1, "no publishing connection before the first publish"
    ask(vhost, "", "receipts", "receipt 1")
    wait_until(lambda: built.events("published"))
    assert connection_count(vhost) == 2, "publishing has a connection of its own"
    assert [body for _, _, body in drain(vhost, "receipts")] == [b"receipt 1"], "confirmed means it is in the queue"
    ask(vhost, "", "receipts", "receipt 2")
    wait_until(lambda: len(built.events("published")) == 2)
    assert connection_count(vhost) == 2, "and reuses it"


def test_an_unroutable_message_is_logged_and_counted_and_publish_returns_as_in_the_original(
    project, services, vhost
) -> None:
    built = project(CONFIG)
    service = built.service(vhost).wait_ready()
    services.append(service)
    for number in range(3):
        ask(vhost, "", "no-such-queue", f"lost {number}")
    wait_until(lambda: len(built.events("published")) == 3)
    assert not built.events("publish-failed") and "consume raised" not in service.log
    assert queue_depth(vhost, "orders") == 0, "the consuming message was acked"
    service.wait_for_log("reached no queue")
    (line,) = [line for line in service.log.splitlines() if "reached no queue" in line]
    assert "routing key 'no-such-queue' reached no queue (312 NO_ROUTE)" in line and "1 unroutable in all" in line
    ask(vhost, "", "no-such-queue", "explicit", mandatory=True)
    (event,) = wait_until(lambda: built.events("publish-failed"))
    assert event["error"] == "PublishReturned", "mandatory=True raises for that call"
    assert "returned the message published to '' with routing key 'no-such-queue': 312 NO_ROUTE" in event["message"]


def test_on_unroutable_raise_makes_every_unroutable_publish_raise(project, services, vhost) -> None:
    built = project("on_unroutable: raise\n" + CONFIG)
    services.append(built.service(vhost).wait_ready())
    ask(vhost, "", "no-such-queue", "lost?")
    (event,) = wait_until(lambda: built.events("publish-failed"))
    assert event["error"] == "PublishReturned"
    ask(vhost, "", "no-such-queue", "dropped quietly", mandatory=False)
    wait_until(lambda: built.events("published"))


def test_a_nacked_message_raises_publish_refused(project, services, vhost) -> None:
    built = project(CONFIG)
    services.append(built.service(vhost).wait_ready())
    ask(vhost, "", "full", "no room")
    (event,) = wait_until(lambda: built.events("publish-failed"))
    assert event["error"] == "PublishRefused"


def test_publishing_to_a_missing_exchange_raises_and_later_publishes_still_work(project, services, vhost) -> None:
    built = project(CONFIG)
    services.append(built.service(vhost).wait_ready())
    ask(vhost, "no-such-exchange", "x", "nowhere")
    (event,) = wait_until(lambda: built.events("publish-failed"))
    assert event["error"] == "PublishError" and "404 NOT_FOUND" in event["message"]
    ask(vhost, "", "receipts", "still fine")
    wait_until(lambda: built.events("published"))
    assert [body for _, _, body in drain(vhost, "receipts")] == [b"still fine"]


def test_unknown_properties_and_float_headers_are_refused_clearly(project, services, vhost) -> None:
    built = project(CONFIG)
    services.append(built.service(vhost).wait_ready())
    ask(vhost, "", "receipts", "x", colour="blue")
    with channel(vhost) as ch:
        ch.basic_publish(
            "",
            "orders",
            json.dumps({"exchange": "", "routing_key": "receipts", "body": "y", "headers": {"ratio": 0.5}}),
        )
    wait_until(lambda: len(built.events("publish-failed")) == 2)
    errors = sorted((e["error"], e["message"]) for e in built.events("publish-failed"))
    assert errors[0][0] == "PublishUnencodable" and "0.5 (float)" in errors[0][1]
    assert errors[1][0] == "TypeError" and "colour" in errors[1][1]
