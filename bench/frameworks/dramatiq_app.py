"""dramatiq's side of scenario 10: `dramatiq frameworks.dramatiq_app --processes 1 --threads 10`,
from bench/, with `dramatiq_queue_prefetch` set (its default prefetch is 2 × threads).

One actor with a no-op body; dramatiq acks a message after its actor returns. Its worker
threads share the Probe, so the count is taken under a lock (the Probe is not thread-safe,
and a lost count would leave the run waiting for its last message).
"""

from __future__ import annotations

import os
import threading

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from frameworks import DRAMATIQ_QUEUE, TASK
from probes import Probe

PROBE = Probe.from_environment()
_COUNTING = threading.Lock()
dramatiq.set_broker(RabbitmqBroker(url=os.environ["RABBITMQ_URL"]))


@dramatiq.actor(actor_name=TASK, queue_name=DRAMATIQ_QUEUE)
def noop(payload: str) -> None:
    with _COUNTING:
        PROBE.tick()
