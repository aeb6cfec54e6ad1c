"""The AsyncAPI document's channels: one for every exchange and every queue the topology shows.

Owns each channel object: its address, its AMQP channel binding (0.3.0: `is: routingKey` with
the exchange's type, durability and auto-delete; `is: queue` with the queue's durability,
exclusivity and auto-delete), the messages it carries, and a description in words of its
bindings, its dead-letter route and its part in a retry policy. What the binding has no field
for is an `x-` extension: a queue's bindings (`x-queue-bindings`), declare arguments
(`x-arguments`), an exchange type of a plugin (`x-exchange-type`); AMQP tables are lists of
name and value pairs, never mappings, so that no name in the config becomes a key (`$ref`). An entity the service does
not declare, or only checks (passive), has only its name in the binding: the rest is not the
config's to say. No vhost: it is the environment's (`RABBITMQ_URL`). Knows nothing of operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amqp_dispatcher.runtime.spec import Binding, Exchange, Queue

from . import messages, topology
from .commonmark import code
from .topology import DEFAULT_EXCHANGE, Edge, Node, Topology

BINDING_VERSION = "0.3.0"
_EXCHANGE_TYPES = frozenset({"topic", "direct", "fanout", "headers"})  # the binding's enum, besides `default`

Object = dict[str, Any]


def channel(node: Node, view: Topology) -> Object:
    is_queue = node.kind == "queue"
    data: Object = {
        "address": _address(node),
        "title": f"{node.kind} {node.name}" if node.name != DEFAULT_EXCHANGE else "the default exchange",
        "description": "\n\n".join(_queue_text(node, view) if is_queue else _exchange_text(node, view)),
        "messages": {name: messages.reference(name) for name in carried(node, view)},
        "bindings": {"amqp": _queue_binding(node) if is_queue else _exchange_binding(node)},
    }
    bindings = [edge.binding for edge in view.bindings if edge.target is node and edge.binding is not None]
    if bindings:
        data["x-queue-bindings"] = [_binding_data(binding) for binding in bindings]
    return data


def carried(node: Node, view: Topology) -> list[str]:
    """The messages a channel carries: plain ones wherever publishers reach, retried copies in a
    delay queue and back in the work queue of a retry policy, parked ones in a parking queue."""
    retried = node.role == "delay" or any(c.queue is node and c.steps for c in view.consumers)
    plain = node.role == "" or any(edge.target is node for edge in view.bindings)
    names = [messages.DELIVERY] if plain else []
    return names + ([messages.RETRIED] if retried else []) + ([messages.PARKED] if node.role == "parking" else [])


def _address(node: Node) -> str | None:
    """A queue's name; None (unknown) for an exchange, whose routing key each publisher chooses,
    and for a name with braces, which AsyncAPI reads as parameters."""
    if node.kind == "exchange" or "{" in node.name or "}" in node.name:
        return None
    return node.name


def _queue_binding(node: Node) -> Object:
    queue: Object = {"name": node.name}
    binding: Object = {"is": "queue", "queue": queue, "bindingVersion": BINDING_VERSION}
    if isinstance(node.spec, Queue) and not node.spec.passive:
        queue |= {"durable": node.spec.durable, "exclusive": node.spec.exclusive, "autoDelete": node.spec.auto_delete}
        if node.spec.arguments:
            binding["x-arguments"] = _pairs(node.spec.arguments)
    return binding


def _exchange_binding(node: Node) -> Object:
    exchange: Object = {"name": node.name}
    binding: Object = {"is": "routingKey", "exchange": exchange, "bindingVersion": BINDING_VERSION}
    kind = topology.exchange_type(node)
    if node.name == DEFAULT_EXCHANGE:
        exchange["type"] = "default"
    elif kind in _EXCHANGE_TYPES:
        exchange["type"] = kind
    elif kind is not None:  # a plugin's type, which the binding's enum lacks
        binding["x-exchange-type"] = kind
    if isinstance(node.spec, Exchange) and not node.spec.passive:
        exchange |= {"durable": node.spec.durable, "autoDelete": node.spec.auto_delete}
        if node.spec.arguments:
            binding["x-arguments"] = _pairs(node.spec.arguments)
    return binding


def _binding_data(binding: Binding) -> Object:
    data: Object = {"exchange": binding.exchange, "routingKey": binding.routing_key}
    if binding.arguments:
        data["arguments"] = _pairs(binding.arguments)
    return data


def _pairs(table: Mapping[str, Any]) -> list[Object]:
    """An AMQP table as a list of `name` and `value` pairs in name order, nested tables too, so that
    no name the config chooses becomes a key of the document: AsyncAPI tools resolve a `$ref` key
    wherever it is, extensions included (a local file, a URL)."""
    return [{"name": str(name), "value": _pair_value(table[name])} for name in sorted(table, key=str)]


def _pair_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _pairs(value)
    if isinstance(value, list | tuple):
        return [_pair_value(item) for item in value]
    return value


# Descriptions


def _exchange_text(node: Node, view: Topology) -> list[str]:
    if node.name == DEFAULT_EXCHANGE:
        parts = ["AMQP's default exchange: it routes a message to the queue its routing key names."]
    else:
        kind = topology.exchange_type(node)
        parts = [f"{'A ' + code(kind) if kind else 'An'} exchange. {_declared_text(node)}"]
    if isinstance(node.spec, Exchange) and node.spec.internal and not node.spec.passive:
        parts.append("Internal: publishers cannot publish to it; only other exchanges route to it.")
    routes = [f"- queue {code(edge.target.name)}{_match(edge)}" for edge in view.bindings if edge.source is node]
    if routes:
        parts.append("Bound queues:\n\n" + "\n".join(routes))
    parts += [f"What it cannot route goes to {_place(edge.target)}." for edge in view.alternates if edge.source is node]
    return parts


def _queue_text(node: Node, view: Topology) -> list[str]:
    parts = [_role_text(node, view) or f"A queue. {_declared_text(node)}"]
    bound = [f"- exchange {code(edge.source.name)}{_match(edge)}" for edge in view.bindings if edge.target is node]
    if bound:
        parts.append("Bound to:\n\n" + "\n".join(bound))
    if isinstance(node.spec, Queue) and node.role != "delay":
        parts += [_dead_letter_text(node.spec, edge) for edge in view.dead_letters if edge.source is node]
    return parts


def _role_text(node: Node, view: Topology) -> str:
    owners = [c for c in view.consumers for step in c.steps if step.queue is node]
    names = ", ".join(dict.fromkeys(f"{code(str(c.entry.consumer))} on {code(c.entry.queue)}" for c in owners))
    if node.role == "delay":
        back = [edge.target for edge in view.dead_letters if edge.source is node]
        where = f" to {_place(back[0])}" if back else ""
        return (
            f"A delay queue of the retry policy of {names}: a failed message waits here for the queue's TTL, "
            f"then is dead-lettered through the default exchange back{where} for its next attempt."
        )
    if node.role == "parking":
        return (
            f"The parking queue of {names}: messages that failed their last attempt, or whose headers could not "
            "be decoded, with headers saying why. `amqp-dispatcher parked ls` lists them; `parked replay` moves "
            f"them back to their queue. {_declared_text(node)}"
        )
    return ""


def _dead_letter_text(queue: Queue, edge: Edge) -> str:
    key = queue.arguments.get("x-dead-letter-routing-key")
    through_default = queue.arguments.get("x-dead-letter-exchange") == DEFAULT_EXCHANGE and edge.target.kind == "queue"
    route = "through the default exchange " if through_default else ""
    with_key = f", with routing key {code(key)}" if isinstance(key, str) and not through_default else ""
    return (
        "Its dead letters (messages rejected without requeue, expired, or over a length limit) go "
        f"{route}to {_place(edge.target)}{with_key}."
    )


def _declared_text(node: Node) -> str:
    if node.spec is None:
        return "Not declared by this service: it must exist when the service starts."
    if node.spec.passive:
        return "Declared by another service: this one only checks, at start, that it exists (passive)."
    return "Declared by this service at start."


def _match(edge: Edge) -> str:
    """What a binding matches, after its entity's name."""
    kind = topology.exchange_type(edge.source)
    if kind == "fanout":
        return " (fanout: every message)"
    if kind == "headers":
        return f", headers {code(edge.label)}"
    binding = edge.binding
    assert binding is not None
    arguments = ", ".join(f"{name}={topology.shown(value)}" for name, value in sorted(binding.arguments.items()))
    extra = f", arguments {code(arguments)}" if arguments else ""
    return f", routing key {code(binding.routing_key)}{extra}"


def _place(node: Node) -> str:
    if node.name == DEFAULT_EXCHANGE:
        return "the default exchange, with each message's own routing key"
    return f"{node.kind} {code(node.name)}"
