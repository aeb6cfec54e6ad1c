"""Error policies: `on_error` and its `retry:` settings to the runtime's Requeue, Reject or Retry.

Owns the names of the policies, the names of a retry's delay and parking queues, and the
queues a retry policy declares. Receives values with the defaults already applied (model.py
applies them); knows nothing of where the config writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amqp_dispatcher.runtime.spec import ConsumerEntry, ErrorPolicy, Queue, Reject, Requeue, Retry

# The names `on_error` gives the error policies.
POLICY_NAMES: Mapping[type, str] = {Requeue: "requeue", Reject: "reject", Retry: "retry"}


def error_policy(name: str, queue: str, retry: Mapping[str, Any]) -> ErrorPolicy:
    """The policy `on_error: name` sets for a consumer of `queue`; `retry` is its retry settings."""
    if name == "retry":
        return _retry(queue, retry)
    return Reject() if name == "reject" else Requeue()


def _retry(queue: str, values: Mapping[str, Any]) -> Retry:
    delays = tuple(float(delay) for delay in values["delays"])
    return Retry(
        max_attempts=int(values["max_attempts"]),
        delays=delays,
        delay_queues=tuple(f"{queue}.retry.{_delay_label(delay)}" for delay in delays),
        parking_queue=values.get("parking_queue") or f"{queue}.parked",
    )


def policy_queues(declared: Iterable[str], consumers: Iterable[ConsumerEntry[Any]]) -> tuple[Queue, ...]:
    """The queues of retry policies that the config does not declare itself, once each."""
    names = set(declared)
    added: dict[str, Queue] = {}
    for consumer in consumers:
        if isinstance(consumer.on_error, Retry):
            for queue in retry_queues(consumer.queue, consumer.on_error):
                if queue.name not in names:
                    added.setdefault(queue.name, queue)
    return tuple(added.values())


def retry_queues(queue: str, retry: Retry) -> list[Queue]:
    """The queues a retry policy needs: one per delay, dead-lettering back to the work queue,
    and the parking queue. All durable, so that a waiting message survives a broker restart."""
    queues: dict[str, Queue] = {}
    for delay, name in zip(retry.delays, retry.delay_queues, strict=True):
        arguments = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
            "x-message-ttl": round(delay * 1000),
        }
        queues[name] = _plain_queue(name, arguments)
    queues[retry.parking_queue] = _plain_queue(retry.parking_queue, {})
    return list(queues.values())


def _plain_queue(name: str, arguments: dict[str, Any]) -> Queue:
    return Queue(
        name=name,
        durable=True,
        auto_delete=False,
        exclusive=False,
        passive=False,
        arguments=dict(sorted(arguments.items())),
        bindings=(),
    )


def _delay_label(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"
