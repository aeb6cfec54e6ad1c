"""Celery's side of scenario 10: `celery -A frameworks.celery_app worker -P gevent -c 10
--without-gossip --without-heartbeat --without-mingle -Q bench-celery`, from bench/.

One task with a no-op body, acked after it returns (task_acks_late). The prefetch is the
concurrency times worker_prefetch_multiplier, so 10 × 10 = 100 as on the other sides. No
result backend, and results ignored: no side stores anything.
"""

from __future__ import annotations

import os

from celery import Celery
from frameworks import CONCURRENCY, PREFETCH, TASK
from probes import Probe

PROBE = Probe.from_environment()
app = Celery("bench", broker=os.environ["RABBITMQ_URL"])
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH // CONCURRENCY,
    broker_connection_retry_on_startup=True,
)


@app.task(name=TASK)
def noop(payload: str) -> None:
    PROBE.tick()
