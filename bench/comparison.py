"""Scenario 10's other side: FastStream, dramatiq and Celery, each filled and started its own way.

Owns, for each framework: the extra that installs it and whether it is importable, its version,
how its pre-filled workload is published (in its own envelope where it needs one), the command
of its worker process and the settings that make the comparison fair, as written beside the
figures. The frameworks are imported only here and in bench/frameworks/, and only when they
run, so that `python -m bench` works without them. Knows nothing of rounds or figures
(scenarios.frameworks does that).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .frameworks import CELERY_QUEUE, CONCURRENCY, DRAMATIQ_QUEUE, FASTSTREAM_QUEUE, PAYLOAD, PREFETCH, TASK
from .harness import HERE, Broker, Subject


@dataclass(frozen=True, slots=True, kw_only=True)
class Framework:
    name: str
    distribution: str  # its name on PyPI, for the version
    module: str  # its import name
    extra: str  # the optional dependency of pyproject.toml that installs it
    queue: str
    command: tuple[str, ...]  # its worker, run from bench/
    env: tuple[tuple[str, str], ...] = ()
    settings: str  # what makes the comparison fair, written beside the figures
    fill: Callable[[Broker, int], None]  # publishes the workload and waits until the broker holds it
    declared: tuple[str, ...]  # the queues it declares, deleted at the end
    exchanges: tuple[str, ...] = ()  # and the exchanges

    def is_installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def version(self) -> str:
        return importlib.metadata.version(self.distribution)

    def start(self, broker: Broker, count: int) -> Subject:
        return Subject(list(self.command), HERE, broker, count, dict(self.env))

    def remove(self, broker: Broker) -> None:
        broker.delete(self.declared, self.exchanges)


def _fill_faststream(broker: Broker, count: int) -> None:
    """FastStream reads a plain body: the same 200 bytes as the service's."""
    broker.declare(FASTSTREAM_QUEUE)
    broker.fill(FASTSTREAM_QUEUE, count, len(PAYLOAD))


def _fill_dramatiq(broker: Broker, count: int) -> None:
    """dramatiq's JSON messages, built by dramatiq, one id each. They are published with pika
    because dramatiq's own enqueue makes every message persistent, and the other sides' are
    transient: the broker does the same work for every side."""
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    client = RabbitmqBroker(url=broker.url)
    client.declare_queue(DRAMATIQ_QUEUE, ensure=True)  # with its dead-letter queue, as the worker declares it
    client.close()
    bodies = (
        Message(queue_name=DRAMATIQ_QUEUE, actor_name=TASK, args=(PAYLOAD,), kwargs={}, options={}).encode()
        for _ in range(count)
    )
    broker.publish(DRAMATIQ_QUEUE, bodies)
    broker.wait_until_held(DRAMATIQ_QUEUE, count)


def _fill_celery(broker: Broker, count: int) -> None:
    """Celery task messages (protocol 2), sent by Celery's own client, transient like the others'."""
    from celery import Celery

    app = Celery("bench-fill", broker=broker.url, set_as_current=False)
    app.conf.task_default_delivery_mode = "transient"
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(TASK, args=(PAYLOAD,), queue=CELERY_QUEUE, producer=producer)
    app.close()
    broker.wait_until_held(CELERY_QUEUE, count)


FRAMEWORKS = (
    Framework(
        name="FastStream",
        distribution="faststream",
        module="faststream",
        extra="bench-faststream",
        queue=FASTSTREAM_QUEUE,
        command=(sys.executable, "-m", "frameworks.faststream_app"),
        settings=f"one process; prefetch {PREFETCH}, which alone bounds its handlers at once (0.7 has no "
        "worker count for RabbitMQ); AckPolicy.ACK; access log off",
        fill=_fill_faststream,
        declared=(FASTSTREAM_QUEUE,),
    ),
    Framework(
        name="dramatiq",
        distribution="dramatiq",
        module="dramatiq",
        extra="bench-dramatiq",
        queue=DRAMATIQ_QUEUE,
        command=(
            sys.executable,
            "-m",
            "dramatiq",
            "frameworks.dramatiq_app",
            "--processes",
            "1",
            "--threads",
            str(CONCURRENCY),
        ),
        env=(("dramatiq_queue_prefetch", str(PREFETCH)),),
        settings=f"--processes 1 --threads {CONCURRENCY}; prefetch {PREFETCH} (its default is 2 × threads)",
        fill=_fill_dramatiq,
        declared=(DRAMATIQ_QUEUE, f"{DRAMATIQ_QUEUE}.DQ", f"{DRAMATIQ_QUEUE}.XQ"),
    ),
    Framework(
        name="Celery",
        distribution="celery",
        module="celery",
        extra="bench-celery",
        queue=CELERY_QUEUE,
        command=(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "frameworks.celery_app",
            "worker",
            "-P",
            "gevent",
            "-c",
            str(CONCURRENCY),
            "--without-gossip",
            "--without-heartbeat",
            "--without-mingle",
            "-Q",
            CELERY_QUEUE,
            "--loglevel",
            "WARNING",
        ),
        settings=f"-P gevent -c {CONCURRENCY} --without-gossip --without-heartbeat --without-mingle; "
        f"worker_prefetch_multiplier {PREFETCH // CONCURRENCY} (prefetch {PREFETCH}); task_acks_late",
        fill=_fill_celery,
        declared=(CELERY_QUEUE,),
        exchanges=(CELERY_QUEUE, "celery.pidbox"),
    ),
)
