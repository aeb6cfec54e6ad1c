"""Tracing with OpenTelemetry: a span per consumed message, and the trace carried by publishes.

Owns the spans and their attributes, which follow OpenTelemetry's messaging semantic conventions
for RabbitMQ: each `consume` runs in a CONSUMER span `process <queue>`, the child of the W3C
trace context found in the message's headers (`traceparent`), with messaging.system,
destination (the exchange), routing key, message id, delivery tag, and the message's outcome;
each `amqp.publish` from a consumer is a PRODUCER span `send <exchange>` whose context is
injected into the headers it sends, so the next service continues the same trace.

The only importer of opentelemetry, and only of its API (the `otel` extra): the service's
startup handler, or opentelemetry-instrument, configures the SDK and the exporter. Tracing is
on when the API is installed and a tracer provider has been configured by the time the startup
handler returns; otherwise nothing here runs and it costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from .logs import ROOT, get_logger
from .version import VERSION

if TYPE_CHECKING:
    from .transport import Delivery

log = get_logger(ROOT)

OUTCOME = "amqp_dispatcher.outcome"  # where the message went (metrics.OUTCOMES), on the consume span


class Tracer:
    """Spans for one service, from the configured OpenTelemetry tracer provider."""

    def __init__(self, tracer: Any, propagate: Any, trace: Any) -> None:
        self._tracer = tracer
        self._propagate = propagate
        self._trace = trace

    def __repr__(self) -> str:
        return "<Tracer opentelemetry>"

    @contextlib.contextmanager
    def consuming(self, consumer: str, queue: str, delivery: Delivery) -> Iterator[Any]:
        """The span `consume` runs in, current while it runs; its outcome is set on the way out."""
        message = delivery.message
        parent = self._propagate.extract(_text_headers(message.headers))
        info = message.delivery_info
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": info.get("exchange") or "",
            "messaging.rabbitmq.destination.routing_key": info.get("routing_key") or "",
            "messaging.rabbitmq.message.delivery_tag": delivery.tag,
            "messaging.consumer.group.name": queue,
            "amqp_dispatcher.consumer": consumer,
        }
        message_id = message.properties.get("message_id")
        if isinstance(message_id, str):
            attributes["messaging.message.id"] = message_id
        kind = self._trace.SpanKind.CONSUMER
        with self._tracer.start_as_current_span(
            f"process {queue}", context=parent, kind=kind, attributes=attributes
        ) as span:
            yield span
            span.set_attribute(OUTCOME, delivery.outcome or "none")

    def failed(self, span: Any, error: BaseException) -> None:
        """consume raised: the span records the exception and ends in error."""
        span.record_exception(error)
        span.set_attribute("error.type", f"{type(error).__module__}.{type(error).__qualname__}")
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(error).__name__))

    @contextlib.contextmanager
    def publishing(self, exchange: str, routing_key: str, headers: MutableMapping[str, Any]) -> Iterator[Any]:
        """The span of one publish; the trace context goes into `headers`."""
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": exchange,
            "messaging.rabbitmq.destination.routing_key": routing_key,
        }
        name = f"send {exchange or '(default)'}"
        with self._tracer.start_as_current_span(
            name, kind=self._trace.SpanKind.PRODUCER, attributes=attributes
        ) as span:
            self._propagate.inject(headers)
            yield span


def configured() -> Tracer | None:
    """A Tracer when the OpenTelemetry API is installed and a tracer provider is configured."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # the API alone: every span would be a no-op
    log.info("tracing with OpenTelemetry (%s)", type(provider).__name__)
    return Tracer(provider.get_tracer("amqp-dispatcher", VERSION), propagate, trace)


def _text_headers(headers: dict[str, Any]) -> dict[str, str]:
    """The headers a propagator can read: text values (AMQP headers may hold bytes or numbers)."""
    return {
        key: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        for key, value in headers.items()
        if isinstance(value, str | bytes)
    }
