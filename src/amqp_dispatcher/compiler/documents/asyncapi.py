"""asyncapi.yaml: the service as an AsyncAPI 3.0 document, with the AMQP bindings (0.3.0).

Owns the document's frame and its operations: `info` (the service's name; as version,
`sha256-` and the start of the config's SHA-256), a `receive` operation for each consumer entry and, for a retry
policy, the `send` operations of its delays and its parking. The channels (channels.py) and
the messages (messages.py) are their own modules. AsyncAPI has no field for the consumer count,
the prefetch or the error policy: those are `x-` extensions, and the descriptions say it all in
words. No server is listed: the broker, the vhost and the credentials come from the
environment at run time. Knows nothing of YAML syntax (source.dump writes it).
"""

from __future__ import annotations

from typing import Any

from amqp_dispatcher.runtime.spec import Retry, Service
from amqp_dispatcher.runtime.version import VERSION

from .. import source
from ..refs import ImportRef
from . import channels, messages, topology
from .channels import BINDING_VERSION
from .commonmark import code
from .topology import Consumer, Node, Step, Topology

SPEC_VERSION = "3.0.0"

Object = dict[str, Any]


def render(service: Service[ImportRef, ImportRef], *, header: str, config_name: str) -> str:
    """The document of `service`, after a `#` comment line holding `header`."""
    view = topology.build(service)
    document = {
        "asyncapi": SPEC_VERSION,
        "info": _info(service, config_name),
        "channels": {node.id: channels.channel(node, view) for node in (*view.exchanges, *view.queues)},
        "operations": {key: value for consumer in view.consumers for key, value in _operations(consumer, view)},
        "components": messages.components(),
    }
    return f"# {header}\n" + source.dump(document)


def _info(service: Service[ImportRef, ImportRef], config_name: str) -> Object:
    return {
        "title": service.name,
        # Never all digits, or digits and an `e`, which a YAML 1.2 reader would take for a number.
        "version": f"sha256-{service.config_sha256[:12]}",
        "description": (
            f"The RabbitMQ topology and consumers of the amqp-dispatcher service {code(service.name)}, generated "
            f"from {code(config_name)}. Its version names the config by the start of its SHA-256. The broker, the "
            "vhost and the credentials are not part of it: the service reads them from its environment "
            "(`RABBITMQ_URL`)."
        ),
        "x-config-sha256": service.config_sha256,
        "x-generator": f"dispatcher-build {VERSION}",
    }


def _operations(consumer: Consumer, view: Topology) -> list[tuple[str, Object]]:
    entry = consumer.entry
    several = entry.consumer_count != 1
    instances = f"{entry.consumer_count} instance{'s' if several else ''}"
    receive = {
        "action": "receive",
        "channel": _channel_ref(consumer.queue),
        "title": f"{entry.consumer.attr} on {entry.queue}",
        "summary": f"{entry.consumer}, {instances}, prefetch {entry.prefetch_count}, on_error {consumer.policy}",
        "description": (
            f"{instances.capitalize()} of {code(str(entry.consumer))} consume{'' if several else 's'} "
            f"{code(entry.queue)}, each one message at a time, with a prefetch of {entry.prefetch_count} (0: no "
            f"limit) on the entry's channel. A message is acknowledged once `consume` returns.\n\n"
            f"{_policy_text(consumer)}"
        ),
        "messages": [_message_ref(consumer.queue, name) for name in channels.carried(consumer.queue, view)],
        "bindings": {"amqp": {"ack": True, "bindingVersion": BINDING_VERSION}},
        "x-consumer-count": entry.consumer_count,
        "x-prefetch-count": entry.prefetch_count,
        "x-on-error": _policy_data(consumer),
    }
    return [(consumer.id, receive), *((step.id, _send(consumer, step)) for step in consumer.steps)]


def _send(consumer: Consumer, step: Step) -> Object:
    parking = step.queue.role == "parking"
    entry = consumer.entry
    return {
        "action": "send",
        "channel": _channel_ref(step.queue),
        "title": f"{entry.consumer.attr} on {entry.queue}: {'park' if parking else 'retry'}",
        "summary": step.label,
        "description": (
            f"The retry policy of {code(str(entry.consumer))} on {code(entry.queue)}, {step.label}: it publishes a "
            f"persistent copy of the failed message, with the retry protocol's headers, through the default exchange "
            f"to {code(step.queue.name)}, and acknowledges the original once the broker confirms the copy (if it "
            "cannot, it requeues the original instead)."
        ),
        "messages": [_message_ref(step.queue, messages.PARKED if parking else messages.RETRIED)],
        "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": BINDING_VERSION}},
    }


def _policy_text(consumer: Consumer) -> str:
    """What happens to a message whose consume raised, as the README says it."""
    policy = consumer.entry.on_error
    if isinstance(policy, Retry):
        delays = ", ".join(topology.seconds(delay) for delay in policy.delays)
        return (
            f"When `consume` raises (`on_error: retry`), a copy of the message waits in a delay queue and comes "
            f"back: {policy.max_attempts} attempts in all, after waits of {delays} (the last repeats). After the "
            f"last, the message is parked in {code(policy.parking_queue)}."
        )
    if consumer.policy == "reject":
        return (
            "When `consume` raises (`on_error: reject`), the message is rejected without requeue: the queue's "
            "dead-letter exchange receives it, and a queue without one drops it."
        )
    return "When `consume` raises (`on_error: requeue`), the message is rejected with requeue: back to its queue."


def _policy_data(consumer: Consumer) -> Object:
    """The error policy under the config's own names."""
    policy = consumer.entry.on_error
    if not isinstance(policy, Retry):
        return {"policy": consumer.policy}
    return {
        "policy": consumer.policy,
        "max_attempts": policy.max_attempts,
        "delays": [int(delay) if delay.is_integer() else delay for delay in policy.delays],
        "delay_queues": list(policy.delay_queues),
        "parking_queue": policy.parking_queue,
    }


def _channel_ref(node: Node) -> Object:
    return {"$ref": f"#/channels/{node.id}"}


def _message_ref(node: Node, name: str) -> Object:
    return {"$ref": f"#/channels/{node.id}/messages/{name}"}
