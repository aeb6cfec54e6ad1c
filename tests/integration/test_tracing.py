"""Tracing across two services and the real broker: one trace from the producer to the last consumer.

What users rely on: with OpenTelemetry configured in each service's startup handler, a message
published inside a producer span is consumed in a span that continues that trace; what the
consumer publishes carries it on; and the next service's consume span continues it again:
producer → consume (service A) → send (A) → consume (service B), one trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pika
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from .harness import Project, channel, complete_lines, wait_until

pytestmark = pytest.mark.broker

SERVICE = """
name: {name}
startup_handler: workers:startup_tracing
consumers:
  - consumer: workers:Recorder
    queue: {queue}
queues:
  - queue: {queue}
"""


def spans(path: Path) -> list[dict[str, Any]]:
    """The spans exported so far: whole lines only, as the service may be writing the last one."""
    return [json.loads(line) for line in complete_lines(path.read_text())] if path.exists() else []


def test_one_trace_from_the_producer_through_two_services(project, services, vhost, tmp_path) -> None:
    trace_a, trace_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first = project(SERVICE.format(name="relay", queue="a"))
    a = first.service(vhost, TRACE_FILE=str(trace_a), TRACE_SERVICE="relay").wait_ready()
    services.append(a)
    assert "tracing with OpenTelemetry" in a.log
    second = Project(tmp_path / "sink", SERVICE.format(name="sink", queue="b")).build()  # a project of its own
    b = second.service(vhost, TRACE_FILE=str(trace_b), TRACE_SERVICE="sink").wait_ready()
    services.append(b)

    producer_tracer = TracerProvider().get_tracer("test-producer")
    headers: dict[str, Any] = {"publish": {"exchange": "", "routing_key": "b", "body": "relayed", "headers": {}}}
    with producer_tracer.start_as_current_span("publish order", kind=trace.SpanKind.PRODUCER) as producer:
        propagate.inject(headers)
        with channel(vhost) as ch:
            ch.confirm_delivery()
            ch.basic_publish("", "a", b"order", pika.BasicProperties(headers=headers, message_id="o-1"))
    wait_until(lambda: any(span["name"] == "process b" for span in spans(trace_b)), timeout=30)
    assert a.stop() == 0 and b.stop() == 0

    (consume_a,) = [span for span in spans(trace_a) if span["name"] == "process a"]
    (send_a,) = [span for span in spans(trace_a) if span["name"] == "send (default)"]
    (consume_b,) = [span for span in spans(trace_b) if span["name"] == "process b"]
    context = producer.get_span_context()
    trace_id, producer_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    assert {consume_a["trace_id"], send_a["trace_id"], consume_b["trace_id"]} == {trace_id}, "one trace"
    assert consume_a["parent_id"] == producer_id
    assert send_a["parent_id"] == consume_a["span_id"]
    assert consume_b["parent_id"] == send_a["span_id"]
    assert (consume_a["kind"], send_a["kind"], consume_b["kind"]) == ("CONSUMER", "PRODUCER", "CONSUMER")
    assert consume_a["attributes"]["messaging.message.id"] == "o-1"
    assert consume_a["attributes"]["amqp_dispatcher.outcome"] == "ack"
    assert send_a["attributes"]["messaging.rabbitmq.destination.routing_key"] == "b"
