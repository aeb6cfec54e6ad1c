"""Consumers for the integration tests. Copied into each test project; they report to EVENTS_FILE.

Each event is one JSON line: {"event": ..., "instance": id, "pid": ..., "body": ..., ...}. The
`Recorder` consumer does what each message's headers ask: sleep (seconds, with gevent), fail,
answer (ack / nack / nack-no-requeue / reject / reject-requeue / double-ack / none), publish.
"""

import itertools
import json
import logging
import os
import time

import gevent

_ids = itertools.count(1)


def emit(event, **fields):
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields}, default=repr) + "\n"
    with open(os.environ["EVENTS_FILE"], "a", encoding="utf-8") as events:
        events.write(line)


def describe(msg):
    try:
        body = msg.body.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    return {
        "body": body,
        "body_hex": msg.body.hex(),
        "body_type": type(msg.body).__name__,
        "headers": msg.headers,
        "properties": sorted(msg.properties),
        "delivery_info": msg.delivery_info,
    }


class Recorder:
    def __init__(self):
        self.id = next(_ids)
        emit("init", instance=self.id)

    def consume(self, amqp, msg):
        headers = msg.headers
        emit("start", instance=self.id, **describe(msg))
        if headers.get("sleep"):
            gevent.sleep(float(headers["sleep"]))
        if headers.get("publish"):
            target = headers["publish"]
            amqp.publish(
                target["exchange"],
                target["routing_key"],
                target.get("headers"),
                target["body"],
                **target.get("properties", {}),
            )
        if headers.get("fail") or (headers.get("fail_once") and not msg.delivery_info["redelivered"]):
            emit("raise", instance=self.id, body=msg.body.decode("utf-8", "replace"))
            raise RuntimeError(f"asked to fail: {msg.body!r}")
        answer = headers.get("answer", "none")
        if answer == "ack":
            amqp.ack()
        elif answer == "nack":
            amqp.nack()
        elif answer == "nack-no-requeue":
            amqp.nack(requeue=False)
        elif answer == "reject":
            amqp.reject(requeue=False)
        elif answer == "reject-requeue":
            amqp.reject(requeue=True)
        elif answer == "double-ack":
            amqp.ack()
            try:
                amqp.ack()
            except Exception as error:
                emit("second-answer", instance=self.id, error=type(error).__name__, message=str(error))
        emit("end", instance=self.id, body=msg.body.decode("utf-8", "replace"))

    def shutdown(self, exception=None):
        emit("shutdown", instance=self.id, exception=repr(exception) if exception is not None else None)


class AlwaysFails:
    def __init__(self):
        self.id = next(_ids)
        emit("init", instance=self.id)

    def consume(self, amqp, msg):
        emit(
            "start",
            instance=self.id,
            body=msg.body.decode("utf-8", "replace"),
            redelivered=msg.delivery_info["redelivered"],
        )
        raise ValueError("poison")

    def shutdown(self, exception=None):
        emit("shutdown", instance=self.id, exception=repr(exception))


class ShutdownRaises(AlwaysFails):
    def shutdown(self, exception=None):
        emit("shutdown", instance=self.id, exception=repr(exception))
        raise RuntimeError("shutdown failed too")


class Publisher:
    """Publishes whatever the message's JSON body describes, and reports how it went."""

    def consume(self, amqp, msg):
        order = json.loads(msg.body)
        try:
            amqp.publish(
                order["exchange"],
                order["routing_key"],
                order.get("headers"),
                order["body"],
                **order.get("properties", {}),
            )
        except Exception as error:
            emit("publish-failed", error=type(error).__name__, message=str(error))
        else:
            emit("published", body=order["body"])

    def shutdown(self, exception=None):
        pass


def startup():
    emit("startup")


def failing_startup():
    raise RuntimeError("cannot start: the database is down")


def startup_logs():
    """Logs, and configures nothing: its line must be shown all the same."""
    logging.getLogger("workers").info("startup handler: pools created")


def startup_basic_config():
    logging.basicConfig(level=logging.INFO, format="BASIC %(levelname)s %(name)s %(message)s")
    logging.getLogger("workers").info("configured by the startup handler")


def startup_root_handler():
    """As the 0.x example did: a handler on the root logger, and DEBUG."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("OLD - %(name)s - %(levelname)s - %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("amqp-dispatcher").setLevel(logging.DEBUG)


class Blocker:
    """Blocks the whole gevent hub, as unpatched blocking I/O does."""

    def consume(self, amqp, msg):
        emit("block-start", body=msg.body.decode())
        time.sleep(float(msg.headers.get("block", "1")))
        emit("block-end", body=msg.body.decode())

    def shutdown(self, exception=None):
        pass


class Tally:
    """Records each message's body (an id) when done; sleeps if the message asks to, and
    records its start too if it asks to be announced."""

    def consume(self, amqp, msg):
        if msg.headers.get("announce"):
            emit("start", body=msg.body.decode("utf-8", "replace"))
        pause = msg.headers.get("sleep")
        if pause:
            gevent.sleep(float(pause))
        if msg.headers.get("fail"):
            emit("failed", body=msg.body.decode("utf-8", "replace"))
            raise ValueError(f"poison {msg.body!r}")
        emit("done", body=msg.body.decode("utf-8", "replace"), redelivered=msg.delivery_info["redelivered"])

    def shutdown(self, exception=None):
        pass


class Inspector:
    """Reports what arrived (sizes, hashes, header types) without echoing large bodies."""

    def consume(self, amqp, msg):
        import hashlib

        emit(
            "inspected",
            id=msg.properties.get("message_id"),
            body_type=type(msg.body).__name__,
            size=len(msg.body),
            sha256=hashlib.sha256(msg.body).hexdigest(),
            header_types={key: type(value).__name__ for key, value in msg.headers.items()},
        )

    def shutdown(self, exception=None):
        pass


class Breaker:
    """Ends its own greenlet once per message that asks to, as stray gevent code can."""

    def consume(self, amqp, msg):
        how = msg.headers.get("break")
        if how and not msg.delivery_info["redelivered"]:
            emit("break", how=how, body=msg.body.decode())
            if how == "greenlet-exit":
                raise gevent.GreenletExit
            if how == "kill":  # killed from another greenlet while it waits
                gevent.spawn(gevent.getcurrent().kill, block=False)
                gevent.sleep(5)
            if how == "system-exit":
                raise SystemExit(1)
        emit("end", body=msg.body.decode())

    def shutdown(self, exception=None):
        emit("shutdown", exception=repr(exception))


def startup_tracing():
    """OpenTelemetry's SDK with an exporter that writes each finished span to TRACE_FILE, one
    JSON line each, as a service's own startup handler would configure its exporter."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class FileExporter(SpanExporter):
        def export(self, spans):
            with open(os.environ["TRACE_FILE"], "a", encoding="utf-8") as out:
                for span in spans:
                    parent = span.parent
                    out.write(
                        json.dumps(
                            {
                                "name": span.name,
                                "kind": span.kind.name,
                                "trace_id": format(span.context.trace_id, "032x"),
                                "span_id": format(span.context.span_id, "016x"),
                                "parent_id": format(parent.span_id, "016x") if parent else None,
                                "attributes": dict(span.attributes or {}),
                            },
                            default=repr,
                        )
                        + "\n"
                    )
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("TRACE_SERVICE", "test")}))
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)
