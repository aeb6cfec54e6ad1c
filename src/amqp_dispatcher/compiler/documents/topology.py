"""The service's topology as the documents show it: what is connected to what, and by which route.

Owns reading the `Service` once for both documents: every exchange and queue they show (the
declared ones, the delay and parking queues of retry policies, and those the service only
refers to: a bound exchange it does not declare, a consumed queue, a dead-letter target), the
bindings, the dead-letter and alternate-exchange routes, the retry flow of each consumer entry,
the plain-text wording of each (one wording in both documents), and the identifiers both use:
letters, digits and `_` only, unique, a pure function of the service. Knows nothing of AsyncAPI
or Mermaid syntax.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Queue, Retry, Service

from ..arguments import PREDECLARED_EXCHANGES
from ..policies import POLICY_NAMES
from ..refs import ImportRef

DEFAULT_EXCHANGE = ""  # AMQP's default exchange: it routes to the queue its routing key names


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """An exchange or a queue the documents show; `spec` is None for one the service does not declare."""

    kind: str  # "exchange" or "queue"
    name: str
    id: str
    spec: Exchange | Queue | None
    role: str = ""  # a queue's: "delay", "parking" or "" (any other)

    @property
    def is_declared(self) -> bool:
        return self.spec is not None and not self.spec.passive


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """A route from one node to another (`target` an exchange or a queue), in plain words."""

    source: Node
    target: Node
    label: str  # empty: nothing to say (a fanout binding)
    binding: Binding | None = None  # for a binding's edge


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """Where a consumer entry's retry policy sends a failed message: a delay queue or the parking queue."""

    queue: Node
    label: str
    id: str  # the AsyncAPI operation that publishes there


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumer:
    """One consumer entry, with its id and, for a retry policy, its steps (the delays, then parking)."""

    entry: ConsumerEntry[ImportRef]
    id: str
    queue: Node
    steps: tuple[Step, ...]

    @property
    def policy(self) -> str:
        return POLICY_NAMES[type(self.entry.on_error)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    service: Service[ImportRef, ImportRef]
    exchanges: tuple[Node, ...]
    queues: tuple[Node, ...]
    bindings: tuple[Edge, ...]  # exchange -> queue, labelled with what the binding matches
    dead_letters: tuple[Edge, ...]  # queue -> exchange, or -> queue through the default exchange
    alternates: tuple[Edge, ...]  # exchange -> its alternate exchange
    consumers: tuple[Consumer, ...]


def build(service: Service[ImportRef, ImportRef]) -> Topology:
    """The topology of `service`: nodes in the service's order, then those it only refers to."""
    ids = _Ids()
    exchanges = _Nodes("exchange", ids)
    queues = _Nodes("queue", ids)
    for exchange in service.exchanges:
        exchanges.add(exchange.name, exchange)
    roles = _roles(service.consumers)
    for queue in service.queues:
        queues.add(queue.name, queue, roles.get(queue.name, ""))
    for entry in service.consumers:
        queues.add(entry.queue)
    bindings = [_binding(exchanges, queues.get(queue.name), b) for queue in service.queues for b in queue.bindings]
    dead_letters = [edge for queue in service.queues for edge in _dead_letter(queue, exchanges, queues)]
    alternates = [
        Edge(source=exchanges.get(exchange.name), target=exchanges.add(target), label="unroutable")
        for exchange in service.exchanges
        if isinstance(target := exchange.arguments.get("alternate-exchange"), str)
    ]
    consumers = [_consumer(entry, ids, queues) for entry in service.consumers]
    return Topology(
        service=service,
        exchanges=exchanges.nodes(),
        queues=queues.nodes(),
        bindings=tuple(bindings),
        dead_letters=tuple(dead_letters),
        alternates=tuple(alternates),
        consumers=tuple(consumers),
    )


def exchange_type(node: Node) -> str | None:
    """The exchange's type, where it is known: declared, or one RabbitMQ predeclares."""
    if isinstance(node.spec, Exchange) and not node.spec.passive:
        return node.spec.type
    return PREDECLARED_EXCHANGES.get(node.name, "direct" if node.name == DEFAULT_EXCHANGE else None)


def binding_label(binding: Binding, exchange_kind: str | None) -> str:
    """What a binding matches: its routing key, its header match on a headers exchange, nothing on
    a fanout one (which ignores both)."""
    if exchange_kind == "fanout":
        return ""
    arguments = sorted(binding.arguments.items())
    if exchange_kind == "headers":
        match = dict(arguments).get("x-match", "all")
        pairs = [f"{key}={shown(value)}" for key, value in arguments if key != "x-match"]
        return ", ".join([f"x-match {shown(match)}", *pairs])
    key = binding.routing_key or "(empty routing key)"
    return ", ".join([key, *(f"{name}={shown(value)}" for name, value in arguments)])


def seconds(value: float) -> str:
    return f"{value:g} s"


def _roles(entries: Iterable[ConsumerEntry[ImportRef]]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry.on_error, Retry):
            roles |= dict.fromkeys(entry.on_error.delay_queues, "delay")
            roles[entry.on_error.parking_queue] = "parking"
    return roles


def _binding(exchanges: _Nodes, queue: Node, binding: Binding) -> Edge:
    exchange = exchanges.add(binding.exchange)
    label = binding_label(binding, exchange_type(exchange))
    return Edge(source=exchange, target=queue, label=label, binding=binding)


def _dead_letter(queue: Queue, exchanges: _Nodes, queues: _Nodes) -> list[Edge]:
    """The queue's dead-letter route: to its dead-letter exchange, or straight to the queue that the
    default exchange routes its dead-letter routing key to."""
    target, key = queue.arguments.get("x-dead-letter-exchange"), queue.arguments.get("x-dead-letter-routing-key")
    if not isinstance(target, str):
        return []
    words = ["dead-letter"]
    ttl = queue.arguments.get("x-message-ttl")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool):
        words.append(f"after {seconds(ttl / 1000)}")
    source = queues.get(queue.name)
    if target == DEFAULT_EXCHANGE and isinstance(key, str):
        return [Edge(source=source, target=queues.add(key), label=" ".join(words))]
    if isinstance(key, str):
        words.append(f"with routing key {key}")
    return [Edge(source=source, target=exchanges.add(target), label=" ".join(words))]


def _consumer(entry: ConsumerEntry[ImportRef], ids: _Ids, queues: _Nodes) -> Consumer:
    entry_id = ids.allocate(f"consumer_{entry.consumer.attr}_{entry.queue}")
    steps: list[Step] = []
    policy = entry.on_error
    if isinstance(policy, Retry):
        for name, attempts in retry_attempts(policy).items():
            delay = policy.delays[policy.delay_queues.index(name)]
            label = f"after {attempts}, wait {seconds(delay)}"
            steps.append(
                Step(queue=queues.get(name), label=label, id=ids.allocate(f"{entry_id}_retry_{seconds(delay)}"))
            )
        label = f"after attempt {policy.max_attempts}, park"
        steps.append(Step(queue=queues.get(policy.parking_queue), label=label, id=ids.allocate(f"{entry_id}_park")))
    return Consumer(entry=entry, id=entry_id, queue=queues.get(entry.queue), steps=tuple(steps))


def retry_attempts(policy: Retry) -> dict[str, str]:
    """Each delay queue the policy uses, in order, with the attempts whose failure sends a message
    there ("attempt 1", "attempts 3 to 9"): the last delay repeats, a delay may appear twice, and
    a delay past the attempts is never used."""
    used: dict[str, list[int]] = {}
    last = len(policy.delay_queues) - 1
    for attempt in range(1, policy.max_attempts):
        used.setdefault(policy.delay_queues[min(attempt - 1, last)], []).append(attempt)
    return {name: _attempts(numbers) for name, numbers in used.items()}


def _attempts(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = [str(run[0]) if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs]
    noun = "attempt" if len(numbers) == 1 else "attempts"
    return f"{noun} {', '.join(parts)}"


def shown(value: Any) -> str:
    """An argument's value as the config could write it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class _Nodes:
    """The nodes of one kind, in the order they are first met, each once."""

    def __init__(self, kind: str, ids: _Ids) -> None:
        self.kind = kind
        self.ids = ids
        self.by_name: dict[str, Node] = {}

    def add(self, name: str, spec: Exchange | Queue | None = None, role: str = "") -> Node:
        if name not in self.by_name:
            self.by_name[name] = Node(
                kind=self.kind, name=name, id=self.ids.allocate(f"{self.kind}_{name}"), spec=spec, role=role
            )
        return self.by_name[name]

    def get(self, name: str) -> Node:
        return self.add(name)

    def nodes(self) -> tuple[Node, ...]:
        return tuple(self.by_name.values())


class _Ids:
    """Identifiers of letters, digits and `_`, each once: the name's other characters become `_`,
    and a repeat gets `_2`, `_3`, ... in the order met, so that the same service gets the same ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def allocate(self, text: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "_"
        candidate, counter = base, 1
        while candidate in self.used:
            counter += 1
            candidate = f"{base}_{counter}"
        self.used.add(candidate)
        return candidate
