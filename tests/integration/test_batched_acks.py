"""Coalesced acks on the real broker: with instances finishing in any order, every message is
acked exactly once and nothing is left unacknowledged or redelivered; a nack or reject in the
middle of a run of acks settles exactly its own message."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pika
import pytest

from .harness import Project, channel, drain, queue_depth, rabbitmqctl, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.each_transport]

# Written beside workers.py in the project: finishes out of order (each message sleeps as its
# headers say), and answers as its headers say, recording what it did.
CONSUMERS = """
import gevent

from workers import emit


class OutOfOrder:
    def consume(self, amqp, msg):
        gevent.sleep(float(msg.headers.get("sleep", 0)))
        answer = msg.headers.get("answer", "ack")
        body = msg.body.decode()
        redelivered = msg.delivery_info["redelivered"]
        if answer == "nack":
            amqp.nack(requeue=False)
        elif answer == "reject":
            amqp.reject(requeue=False)
        else:
            amqp.ack()
        emit("done", body=body, answer=answer, redelivered=redelivered, tag=msg.delivery_info["delivery_tag"])

    def shutdown(self, exception=None):
        pass
"""

CONFIG = """
consumers:
  - consumer: batched:OutOfOrder
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
"""


def build(tmp_path: Path, count: int, prefetch: int) -> Project:
    project = Project(tmp_path / "project", CONFIG.format(count=count, prefetch=prefetch))
    (project.root / "batched.py").write_text(CONSUMERS, encoding="utf-8")
    return project.build()


def fill(vhost: str, messages: list[tuple[str, dict[str, object]]]) -> None:
    with channel(vhost) as ch:
        ch.confirm_delivery()
        for body, headers in messages:
            ch.basic_publish("", "work", body, pika.BasicProperties(headers=headers, delivery_mode=2), mandatory=True)


def unacknowledged(vhost: str, queue: str) -> int:
    lines = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_unacknowledged").splitlines()
    return next(int(line.split("\t")[1]) for line in lines if line.split("\t")[0] == queue)


def declare(vhost: str) -> None:
    with channel(vhost) as ch:
        ch.exchange_declare("dead", "fanout", durable=True)
        ch.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "dead"})
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_bind("dead-letters", "dead")


def finished(project: Project, count: int) -> list[dict[str, object]] | None:
    done = project.events("done")
    return done if len(done) >= count else None


def test_out_of_order_completion_acks_every_message_exactly_once(tmp_path, services, vhost) -> None:
    project = build(tmp_path, count=10, prefetch=100)
    declare(vhost)
    total = 600
    # 0 to 19 ms, spread so that neighbouring tags finish in a different order than they came.
    fill(vhost, [(f"m-{n:04d}", {"sleep": str(((n * 7919) % 20) / 1000)}) for n in range(total)])
    service = project.service(vhost).wait_ready()
    services.append(service)
    done = wait_until(lambda: finished(project, total), timeout=60)
    tags = [event["tag"] for event in done]
    assert tags != sorted(tags), "the instances finished out of order"
    # Nothing is held back while the service keeps running: the acks went out without a drain.
    wait_until(lambda: unacknowledged(vhost, "work") == 0, timeout=5, message="no unacknowledged message")
    assert queue_depth(vhost, "work") == 0
    assert service.stop() == 0
    done = project.events("done")
    assert Counter(event["body"] for event in done) == Counter(f"m-{n:04d}" for n in range(total)), "each once"
    assert not any(event["redelivered"] for event in done)
    assert queue_depth(vhost, "work") == 0 and queue_depth(vhost, "dead-letters") == 0


@pytest.mark.parametrize("count", [1, 10])
def test_a_nack_and_a_reject_in_a_run_of_acks_dead_letter_exactly_their_messages(
    tmp_path, services, vhost, count
) -> None:
    project = build(tmp_path, count=count, prefetch=100)
    declare(vhost)
    total = 300
    answers = {120: "nack", 121: "ack", 200: "reject"}
    fill(vhost, [(f"m-{n:04d}", {"answer": answers.get(n, "ack")}) for n in range(total)])
    service = project.service(vhost).wait_ready()
    services.append(service)
    wait_until(lambda: finished(project, total), timeout=60)
    wait_until(lambda: unacknowledged(vhost, "work") == 0, timeout=5, message="no unacknowledged message")
    assert service.stop() == 0
    done = project.events("done")
    assert Counter(event["body"] for event in done) == Counter(f"m-{n:04d}" for n in range(total)), "each once"
    assert not any(event["redelivered"] for event in done)
    assert queue_depth(vhost, "work") == 0
    dead = sorted(body.decode() for _method, _properties, body in drain(vhost, "dead-letters"))
    assert dead == ["m-0120", "m-0200"]
