"""Topology: exchanges, queues and bindings declared before consuming starts.

Owns the order of declarations (exchanges, then queues, then bindings, so bindings work on a
fresh broker) and what a refusal tells the operator. Passive entries are only checked. Runs on
a channel of its own, closed afterwards. Knows nothing of consumers.
"""

from __future__ import annotations

import logging

from .errors import DeclarationRefused
from .spec import Queue, Service
from .transport import Channel, Connection

log = logging.getLogger("amqp-dispatcher.topology")

_ADVICE = {
    403: "the user lacks the configure permission on it, or the name is reserved",
    404: "it does not exist: create it, declare it in the config, or drop passive: true",
    405: "another connection owns it (exclusive)",
    406: "it exists with other settings: change the config to match, or delete it so it can be declared again",
}


def declare(connection: Connection, service: Service) -> None:
    """Declare everything; raises DeclarationRefused (fatal) or a Recoverable error."""
    channel = connection.channel()
    try:
        for exchange in service.exchanges:
            channel.declare_exchange(exchange)
        for queue in service.queues:
            channel.declare_queue(queue)
        for queue in service.queues:
            _bind(channel, queue)
    except DeclarationRefused as refusal:
        raise explained(refusal) from refusal
    channel.close()
    log.info(
        "declared %d exchanges, %d queues and %d bindings",
        len(service.exchanges),
        len(service.queues),
        sum(len(queue.bindings) for queue in service.queues),
    )


def redeclare_queue(channel: Channel, service: Service, name: str) -> None:
    """Declare one queue again with its bindings, if the config declares it (after a deletion)."""
    for queue in service.queues:
        if queue.name == name:
            try:
                channel.declare_queue(queue)
                _bind(channel, queue)
            except DeclarationRefused as refusal:
                raise explained(refusal) from refusal


def explained(refusal: DeclarationRefused) -> DeclarationRefused:
    """The refusal with what it means for the operator."""
    advice = _ADVICE.get(refusal.reply_code or 0)
    if advice is None:
        return refusal
    return DeclarationRefused(f"{refusal}; {advice}", reply_code=refusal.reply_code, reply_text=refusal.reply_text)


def _bind(channel: Channel, queue: Queue) -> None:
    for binding in queue.bindings:
        channel.bind(queue.name, binding)
