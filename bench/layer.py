"""Our per-message layer alone: deliveries through a ConsumerPool with the broker taken out.

A diagnostic, not a comparison: it feeds pika-shaped deliveries (250 per hub iteration, as one
socket read brings them) through the pool's real path (queue, worker greenlet, proxy, ack) to a
channel whose ack does nothing, and reports the CPU time per message. It says how much of the
gap to the bare loop in scenario 1 is ours, measured without the broker's noise.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.event
import pika
import pika.spec

from amqp_dispatcher.runtime import transport
from amqp_dispatcher.runtime.metrics import EntryMetrics
from amqp_dispatcher.runtime.pika_transport import channel as pika_channel
from amqp_dispatcher.runtime.pika_transport import frames
from amqp_dispatcher.runtime.pool import ConsumerPool
from amqp_dispatcher.runtime.spec import ConsumerEntry, Requeue


def cost_per_message(messages: int = 200_000, *, metrics: bool = False) -> float:
    """Microseconds of CPU our layer spends per message, from hand-off to ack (counting metrics
    as the HTTP endpoint makes it, if `metrics`)."""
    finished = gevent.event.Event()
    seen = [0]

    class NoOp:
        def consume(self, amqp: Any, msg: Any) -> None:
            seen[0] += 1
            if seen[0] == messages:
                finished.set()

        def shutdown(self, exception: BaseException | None = None) -> None:
            pass

    class QuietChannel(pika_channel.PikaChannel):
        def __init__(self) -> None:  # no pika channel underneath: acks go nowhere
            raw = type(
                "Raw",
                (),
                {
                    "is_open": True,
                    "basic_ack": lambda self, tag, multiple=False: None,
                    "add_on_close_callback": lambda self, callback: None,
                },
            )()
            super().__init__(raw, None)  # type: ignore[arg-type]

    entry = ConsumerEntry(consumer=NoOp, queue="q", consumer_count=1, prefetch_count=1000, on_error=Requeue())
    pool = ConsumerPool(entry, publisher=None)  # type: ignore[arg-type]
    pool.metrics = EntryMetrics() if metrics else None
    channel = QuietChannel.__new__(QuietChannel)
    QuietChannel.__init__(channel)
    pool._channel, pool._accepting = channel, True  # attached, as the supervisor would
    pool.start()
    method = pika.spec.Basic.Deliver(consumer_tag="c", delivery_tag=1, redelivered=False, exchange="", routing_key="q")
    # Stamped, as many producers do: with metrics on, time in queue is measured too.
    properties, body = pika.BasicProperties(timestamp=int(time.time())), b"x" * 200

    def feed() -> None:
        for _ in range(messages // 250):
            for _ in range(250):
                pool._deliver(transport.Delivery(channel, frames._message(method, properties, body)))
            gevent.sleep(0)

    started = time.process_time()
    gevent.spawn(feed)
    finished.wait()
    cost = (time.process_time() - started) / messages * 1e6
    pool.close()
    return cost
