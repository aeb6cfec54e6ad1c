"""The baseline: a bare pika GeventConnection consume loop, as one would write it by hand.

`python bench/bare_loop.py MODE QUEUE PREFETCH` with BENCH_COUNT and BENCH_RESULT set. MODE ack
acks each message in pika's callback; latency does the same and measures; publish republishes
each message on a confirm channel and acks it once the confirm arrives. No greenlets, no
instances, no policies: the least work that consuming with acknowledgements can be.
"""

from __future__ import annotations

import sys

import gevent
import gevent.event
import pika
from pika.adapters.gevent_connection import GeventConnection
from probes import Probe


def main() -> None:
    mode, queue, prefetch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    probe = Probe.from_environment()
    done = gevent.event.Event()
    opened = gevent.event.AsyncResult()
    GeventConnection(pika.ConnectionParameters("127.0.0.1", virtual_host=_vhost()), on_open_callback=opened.set)
    connection = opened.get(timeout=10)
    consuming = gevent.event.AsyncResult()
    connection.channel(on_open_callback=consuming.set)
    channel = consuming.get(timeout=10)

    def finish() -> None:
        if probe.count >= probe.expected:
            done.set()

    if mode == "publish":
        confirming = gevent.event.AsyncResult()
        connection.channel(on_open_callback=confirming.set)
        out = confirming.get(timeout=10)
        pending: list[int] = []

        def on_confirm(frame: object) -> None:
            channel.basic_ack(pending.pop(0))
            probe.tick()
            finish()

        ready = gevent.event.AsyncResult()
        out.confirm_delivery(on_confirm, callback=ready.set)
        ready.get(timeout=10)

        def on_message(_ch: object, method: object, properties: object, body: bytes) -> None:
            pending.append(method.delivery_tag)  # type: ignore[attr-defined]
            out.basic_publish("", "bench-out", body, pika.BasicProperties(delivery_mode=2))

    else:

        def on_message(_ch: object, method: object, properties: object, body: bytes) -> None:
            published = float(properties.headers["published_at"]) if mode == "latency" else None  # type: ignore[attr-defined]
            probe.tick(published)
            channel.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
            finish()

    channel.basic_qos(prefetch_count=prefetch)
    channel.basic_consume(queue, on_message)
    print("ready", flush=True)
    done.wait()
    gevent.sleep(0.2)  # let the last acks go out


def _vhost() -> str:
    import os

    return os.environ["BENCH_VHOST"]


if __name__ == "__main__":
    main()
