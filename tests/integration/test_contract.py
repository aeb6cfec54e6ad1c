"""The classic consumer contract, against the real broker: what consume sees and what its answers do."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from .harness import Project, Service, channel, drain, publish, queue_depth, rabbitmqctl, wait_until

pytestmark = pytest.mark.broker

CONFIG = """
name: contract
consumers:
  - consumer: workers:Recorder
    queue: work
    consumer_count: {count}
    prefetch_count: {prefetch}
exchanges:
  - exchange: dead
    type: fanout
queues:
  - queue: work
    x_dead_letter_exchange: dead
  - queue: dead-letters
    bindings:
      - exchange: dead
  - queue: published
"""


def start(
    project: Callable[[str], Project], services: list[Service], vhost: str, count: int = 3, prefetch: int = 10
) -> Project:
    built = project(CONFIG.format(count=count, prefetch=prefetch))
    services.append(built.service(vhost).wait_ready())
    return built


def test_each_delivery_is_consumed_once_by_one_of_consumer_count_instances(project, services, vhost) -> None:
    built = start(project, services, vhost, count=3, prefetch=10)
    bodies = [f"message {n}" for n in range(30)]
    publish(vhost, "work", bodies, headers={"sleep": "0.02"})
    wait_until(lambda: len(built.events("end")) == 30)
    starts = built.events("start")
    assert sorted(event["body"] for event in starts) == sorted(bodies)
    assert len({event["instance"] for event in built.events("init")}) == 3
    # Each instance handles one message at a time: its start/end events alternate.
    for instance in {event["instance"] for event in starts}:
        sequence = [
            e["event"] for e in built.events() if e.get("instance") == instance and e["event"] in ("start", "end")
        ]
        assert sequence == ["start", "end"] * (len(sequence) // 2)
    assert queue_depth(vhost, "work") == 0, "returning without answering acks"
    services[0].stop()
    assert queue_depth(vhost, "work") == 0, "nothing comes back when the connection closes: all were acked"


def test_prefetch_is_applied_per_consumer_entry(project, services, vhost) -> None:
    start(project, services, vhost, count=2, prefetch=7)
    listing = rabbitmqctl("list_consumers", "-p", vhost, "queue_name", "prefetch_count", "ack_required")
    assert "work\ttrue\t7" in listing


def test_answers_ack_nack_and_reject(project, services, vhost) -> None:
    built = start(project, services, vhost)
    publish(vhost, "work", ["acked"], headers={"answer": "ack"})
    publish(vhost, "work", ["rejected"], headers={"answer": "reject"})
    publish(vhost, "work", ["nacked without requeue"], headers={"answer": "nack-no-requeue"})
    wait_until(lambda: len(built.events("end")) == 3)
    wait_until(lambda: queue_depth(vhost, "dead-letters") == 2)
    assert sorted(body for _, _, body in drain(vhost, "dead-letters")) == [b"nacked without requeue", b"rejected"]
    assert queue_depth(vhost, "work") == 0


def test_nack_requeues_by_default(project, services, vhost) -> None:
    built = start(project, services, vhost, count=1, prefetch=1)
    publish(vhost, "work", ["again"], headers={"answer": "nack"})
    wait_until(lambda: len(built.events("start")) >= 3)
    redelivered = [event["delivery_info"]["redelivered"] for event in built.events("start")]
    assert redelivered[:3] == [False, True, True]


def test_answering_twice_raises_a_clear_error_and_the_message_stays_acked(project, services, vhost) -> None:
    built = start(project, services, vhost)
    publish(vhost, "work", ["twice"], headers={"answer": "double-ack"})
    (event,) = wait_until(lambda: built.events("second-answer"))
    assert event["error"] == "AlreadyAnswered"
    assert "already answered with ack" in event["message"]
    wait_until(lambda: built.events("end"))
    assert queue_depth(vhost, "work") == 0 and not built.events("raise")


@pytest.mark.each_transport
def test_msg_carries_bytes_headers_properties_and_delivery_info(project, services, vhost) -> None:
    built = start(project, services, vhost)
    with channel(vhost) as ch:
        import pika

        properties = pika.BasicProperties(
            headers={"trace": "abc", "n": 7},
            content_type="application/octet-stream",
            correlation_id="c-1",
            message_id="m-1",
            priority=3,
        )
        ch.basic_publish("", "work", b"\xff\x00\xfe not utf-8", properties)
    (event,) = wait_until(lambda: built.events("start"))
    assert event["body_type"] == "bytes"
    assert event["body_hex"] == b"\xff\x00\xfe not utf-8".hex()
    assert event["body"] is None, "a body that is not UTF-8 is delivered as bytes, not decoded"
    assert event["headers"] == {"trace": "abc", "n": 7}
    assert event["properties"] == ["content_type", "correlation_id", "headers", "message_id", "priority"]
    info = event["delivery_info"]
    assert info["exchange"] == "" and info["routing_key"] == "work" and info["redelivered"] is False
    assert isinstance(info["delivery_tag"], int) and info["consumer_tag"].startswith("ctag")
    wait_until(lambda: built.events("end"))


def test_publish_with_properties_from_consume(project, services, vhost) -> None:
    built = start(project, services, vhost)
    target = {
        "exchange": "",
        "routing_key": "published",
        "headers": {"source": "consumer"},
        "body": "héllo",
        "properties": {
            "content_type": "text/plain",
            "correlation_id": "corr-9",
            "reply_to": "replies",
            "message_id": "id-9",
            "expiration": 60000,
            "priority": 5,
            "timestamp": 1700000000,
            "app_id": "tests",
        },
    }
    publish(vhost, "work", ["go"], headers={"publish": target})
    wait_until(lambda: built.events("end"))
    ((_, properties, body),) = drain(vhost, "published")
    assert body == "héllo".encode()
    assert properties.headers == {"source": "consumer"}
    assert (properties.content_type, properties.correlation_id, properties.reply_to) == (
        "text/plain",
        "corr-9",
        "replies",
    )
    assert (properties.message_id, properties.expiration, properties.priority) == ("id-9", "60000", 5)
    assert (properties.timestamp, properties.app_id) == (1700000000, "tests")
    assert properties.delivery_mode == 2, "persistent unless told otherwise"


def test_bytes_body_is_published_unchanged(project, services, vhost) -> None:
    built = project(CONFIG.format(count=1, prefetch=1).replace("workers:Recorder", "workers:Publisher"))
    services.append(built.service(vhost).wait_ready())
    import json

    publish(vhost, "work", [json.dumps({"exchange": "", "routing_key": "published", "body": "plain"})])
    wait_until(lambda: built.events("published"))
    assert [body for _, _, body in drain(vhost, "published")] == [b"plain"]


@pytest.mark.parametrize("count", [1, 4])
def test_messages_are_never_lost_or_duplicated(project, services, vhost, count: int) -> None:
    built = start(project, services, vhost, count=count, prefetch=50)
    bodies = [f"{n}" for n in range(500)]
    publish(vhost, "work", bodies)
    wait_until(lambda: len(built.events("end")) >= 500)
    seen = sorted(int(event["body"]) for event in built.events("start"))
    assert seen == list(range(500))
    assert list(itertools.islice(seen, 3)) == [0, 1, 2]
