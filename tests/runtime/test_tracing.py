"""Tracing on the in-memory broker: the consume span continues the producer's trace, and a
publish from consume carries the trace on.

What users rely on: with a tracer provider configured, each consume runs in a CONSUMER span
that is the child of the `traceparent` header the message came with, named and attributed as
OpenTelemetry's messaging conventions say, with the message's outcome; a failure is recorded
on it; `amqp.publish` from consume sends the trace context in its headers, as a PRODUCER span
child of the consume span. Without a configured provider nothing is traced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from amqp_dispatcher.runtime import tracing
from amqp_dispatcher.runtime.spec import Reject

from .rig import Rig, queue, wait_for


class Relay:
    def consume(self, amqp: Any, msg: Any) -> None:
        if msg.body == b"fail":
            raise ValueError("asked to")
        amqp.publish("", "next", {"hop": 1}, msg.body)

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


@pytest.fixture
def exported() -> Iterator[tuple[tracing.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracing.Tracer(provider.get_tracer("test"), propagate, trace), exporter
    provider.shutdown()


def producer_headers(provider_tracer: Any) -> tuple[dict[str, str], Any]:
    headers: dict[str, str] = {}
    with provider_tracer.start_as_current_span("producer", kind=trace.SpanKind.PRODUCER) as span:
        propagate.inject(headers)
    return headers, span.get_span_context()


def test_the_chain_producer_consume_publish_is_one_trace(exported: tuple[tracing.Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = exported
    rig = Rig(Relay)
    rig.broker.declare_queue(queue("next"))
    rig.pool.tracer = tracer
    try:
        headers, producer = producer_headers(tracer._tracer)
        rig.broker.publish("", "q", b"one", {"headers": headers, "message_id": "m-1"})
        wait_for(lambda: rig.ready("next"))
    finally:
        rig.close()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    consume, send = spans["process q"], spans["send (default)"]
    assert consume.kind == trace.SpanKind.CONSUMER and send.kind == trace.SpanKind.PRODUCER
    assert consume.context.trace_id == send.context.trace_id == producer.trace_id
    assert consume.parent is not None and consume.parent.span_id == producer.span_id
    assert send.parent is not None and send.parent.span_id == consume.context.span_id
    attributes = dict(consume.attributes or {})
    assert attributes["messaging.system"] == "rabbitmq" and attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.message.id"] == "m-1" and attributes["messaging.rabbitmq.message.delivery_tag"] == 1
    assert attributes[tracing.OUTCOME] == "ack"
    (relayed,) = rig.ready("next")
    carried = propagate.extract(relayed.properties["headers"])
    assert trace.get_current_span(carried).get_span_context().span_id == send.context.span_id
    assert relayed.properties["headers"]["hop"] == 1, "the consumer's own headers are kept"


def test_a_failed_consume_is_an_error_span_with_the_exception(
    exported: tuple[tracing.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    rig = Rig(Relay, on_error=Reject())
    rig.pool.tracer = tracer
    try:
        rig.send(1, b"fail")
        wait_for(lambda: rig.settled(1))
    finally:
        rig.close()
    (span,) = [span for span in exporter.get_finished_spans() if span.name == "process q"]
    assert span.status.status_code == trace.StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "builtins.ValueError"
    assert (span.attributes or {})[tracing.OUTCOME] == "reject"
    assert [event.name for event in span.events] == ["exception"]


def test_without_a_configured_provider_nothing_is_traced() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "no test sets the global provider"
    assert tracing.configured() is None


class Holding:
    """Handles messages concurrently (each waits a little), publishing nothing."""

    def consume(self, amqp: Any, msg: Any) -> None:
        import gevent

        gevent.sleep(0.01)

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


def test_each_message_gets_its_own_trace_even_between_concurrent_and_consecutive_messages(
    exported: tuple[tracing.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    rig = Rig(Holding, count=3)
    rig.pool.tracer = tracer
    producers = {}
    try:
        for number in range(6):
            if number % 2:  # every other message comes without a trace context
                rig.send(number)
                continue
            headers, producer = producer_headers(tracer._tracer)
            producers[str(number)] = producer
            rig.broker.publish("", "q", b"x", {"headers": headers, "message_id": str(number)})
        wait_for(lambda: len([s for s in exporter.get_finished_spans() if s.name == "process q"]) == 6)
    finally:
        rig.close()
    for span in (s for s in exporter.get_finished_spans() if s.name == "process q"):
        number = (span.attributes or {})["messaging.message.id"]
        producer = producers.get(str(number))
        if producer is None:
            assert span.parent is None, f"message {number} had no trace context: a trace of its own"
            assert span.context.trace_id not in {p.trace_id for p in producers.values()}
        else:
            assert span.parent is not None and span.parent.span_id == producer.span_id, number
