"""Differential runs: one scenario on RabbitMQ and on the test kit's in-memory broker.

A scenario is a config of `workers:Recorder` consumers and the messages to publish. Each side
runs it to rest and reports an `Outcome`: which bodies were attempted (and whether redelivered),
which completed and which raised, and what is left in every queue of the config, with the
headers that say why (x-death, x-first-death-*, the retry protocol's). Times are left out: they
are the only thing allowed to differ.

The kit's side runs first, the package in this process with `Harness.run_until_done`, its clock
jumping from timer to timer. RabbitMQ's side runs `python -m service` until it has made the same
consume calls and every queue that a consumer reads, and every delay queue, holds nothing ready
or unacknowledged (or for a minute), then stops it and reads every queue.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika

from amqp_dispatcher.runtime.spec import Retry
from amqp_dispatcher.testing import Harness

from .harness import Project, channel, drain, rabbitmqctl, wait_until

# Headers that carry a time: the one thing the two sides may not agree on.
_TIMES = {"x-dispatcher-parked-at"}


@dataclass(frozen=True)
class Publication:
    body: str
    routing_key: str
    exchange: str = ""
    headers: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    config: str
    publications: tuple[Publication, ...]


@dataclass
class Outcome:
    attempts: Counter[tuple[str, bool]]  # (body, redelivered) per consume call
    completed: Counter[str]
    raised: Counter[str]
    second_answers: Counter[str]  # the error type a second answer raised
    queues: dict[str, Counter[str]]  # queue -> the canonical form of each message left in it

    def differences(self, other: Outcome) -> list[str]:
        found = []
        for name in ("attempts", "completed", "raised", "second_answers"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                found.append(f"{name}: RabbitMQ {dict(mine)} but in memory {dict(theirs)}")
        for queue in sorted(set(self.queues) | set(other.queues)):
            mine, theirs = self.queues.get(queue, Counter()), other.queues.get(queue, Counter())
            if mine != theirs:
                only_real, only_memory = mine - theirs, theirs - mine
                found.append(f"queue {queue!r}: only on RabbitMQ {dict(only_real)}; only in memory {dict(only_memory)}")
        return found


def canonical(body: bytes, headers: Mapping[str, Any] | None) -> str:
    """A message as text that compares across the two sides: body and headers, times dropped."""
    kept = {key: _plain(value) for key, value in (headers or {}).items() if key not in _TIMES}
    for death in kept.get("x-death", []):
        death.pop("time", None)
    return json.dumps({"body": body.decode("utf-8", "replace"), "headers": kept}, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _from_events(project: Project, queues: dict[str, Counter[str]]) -> Outcome:
    return Outcome(
        attempts=Counter((event["body"], event["delivery_info"]["redelivered"]) for event in project.events("start")),
        completed=Counter(event["body"] for event in project.events("end")),
        raised=Counter(event["body"] for event in project.events("raise")),
        second_answers=Counter(event["error"] for event in project.events("second-answer")),
        queues=queues,
    )


def _queue_names(config_root: Path) -> list[str]:
    with _imported(config_root) as package:
        return [queue.name for queue in package.SERVICE.queues]


def _resting_queues(config_root: Path) -> list[str]:
    """The queues a consumer reads, and the retry policies' delay queues."""
    with _imported(config_root) as package:
        names = set()
        for entry in package.SERVICE.consumers:
            names.add(entry.queue)
            if isinstance(entry.on_error, Retry):
                names.update(entry.on_error.delay_queues)
        return sorted(names)


def run_on_rabbitmq(
    scenario: Scenario, project: Project, vhost: str, services: list[Any], expected: Outcome
) -> Outcome:
    """Run until RabbitMQ's side has done what the kit's did and its queues are at rest, or for
    a minute; then stop the service and take the outcome, which the caller compares in full.

    Waiting for the kit's counts, not only for empty queues: RabbitMQ's queue statistics lag (a
    quorum queue's, by seconds), so empty-looking queues alone could stop the service early. If
    RabbitMQ would go on past that point, what it would still do is in its queues at the stop."""
    service = project.service(vhost).wait_ready()
    services.append(service)
    with channel(vhost) as ch:
        ch.confirm_delivery()
        for one in scenario.publications:
            properties = pika.BasicProperties(headers=dict(one.headers) or None, **one.properties)
            ch.basic_publish(one.exchange, one.routing_key, one.body.encode(), properties)
    consumed = _resting_queues(project.root)

    def at_rest() -> bool:
        so_far = _from_events(project, {})
        if (so_far.attempts, so_far.completed, so_far.raised) != (
            expected.attempts,
            expected.completed,
            expected.raised,
        ):
            return False
        listing = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged", "-q")
        rows = [line.split("\t") for line in listing.splitlines()[1:] if line.strip()]
        return all(row[1:] == ["0", "0"] for row in rows if row[0] in consumed)

    with contextlib.suppress(AssertionError):  # a scenario that never gets there fails on the comparison
        wait_until(at_rest, timeout=60, interval=0.2, message=f"{scenario.name}: the queues to come to rest")
    assert service.stop() == 0, service.log
    queues = {}
    for name in _queue_names(project.root):
        queues[name] = Counter(canonical(body, properties.headers) for _, properties, body in drain(vhost, name))
    return _from_events(project, queues)


def run_in_memory(scenario: Scenario, project: Project) -> Outcome:
    with _imported(project.root) as package, _events_to(project):
        with Harness(package) as kit:
            for one in scenario.publications:
                kit.publish(
                    one.exchange, one.routing_key, one.body, headers=dict(one.headers) or None, **one.properties
                )
            kit.run_until_done()
        assert kit.status == 0
        queues = {
            queue.name: Counter(canonical(message.body, message.headers) for message in kit.messages(queue.name))
            for queue in package.SERVICE.queues
        }
    return _from_events(project, queues)


@contextlib.contextmanager
def _imported(root: Path) -> Iterator[Any]:
    """The project's generated package, imported in this process and forgotten afterwards."""
    names = ("service", "workers")
    for name in [module for module in sys.modules if module.split(".")[0] in names]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("service")
    finally:
        sys.path.remove(str(root))
        for name in [module for module in sys.modules if module.split(".")[0] in names]:
            del sys.modules[name]


@contextlib.contextmanager
def _events_to(project: Project) -> Iterator[None]:
    previous = os.environ.get("EVENTS_FILE")
    os.environ["EVENTS_FILE"] = str(project.events_file)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["EVENTS_FILE"]
        else:
            os.environ["EVENTS_FILE"] = previous
