"""Topology: exchanges, queues and bindings declared before consuming starts.

Owns the order of declarations (exchanges, then queues, then bindings, so bindings work on a
fresh broker) and what a refusal tells the operator. Passive entries are only checked. Runs on
a channel of its own, closed afterwards. Knows nothing of consumers.
"""

from __future__ import annotations

import logging

from .errors import DeclarationRefused
from .spec import Service
from .transport import Channel, Connection

log = logging.getLogger("amqp-dispatcher.topology")

_ADVICE = {
    403: "the user lacks the configure permission on it, or the name is reserved",
    404: "it does not exist: create it, declare it in the config, or drop passive: true",
    405: "another connection owns it (exclusive)",
    406: "it exists with other settings: change the config to match, or delete it so it can be declared again",
}


def declare(connection: Connection, service: Service) -> None:
    """Declare everything on a channel of its own; raises DeclarationRefused (fatal) or a Recoverable error."""
    channel = connection.channel()
    declare_on(channel, service)
    channel.close()
    log.info(
        "declared %d exchanges, %d queues and %d bindings",
        len(service.exchanges),
        len(service.queues),
        sum(len(queue.bindings) for queue in service.queues),
    )


def declare_on(channel: Channel, service: Service) -> None:
    """Exchanges, then queues, then bindings. Declaring is idempotent, so this also restores
    whatever was deleted while the service ran."""
    try:
        for exchange in service.exchanges:
            channel.declare_exchange(exchange)
        for queue in service.queues:
            channel.declare_queue(queue)
        for queue in service.queues:
            for binding in queue.bindings:
                channel.bind(queue.name, binding)
    except DeclarationRefused as refusal:
        raise explained(refusal) from refusal


def explained(refusal: DeclarationRefused) -> DeclarationRefused:
    """The refusal with what it means for the operator."""
    advice = _ADVICE.get(refusal.reply_code or 0)
    if advice is None:
        return refusal
    return DeclarationRefused(f"{refusal}; {advice}", reply_code=refusal.reply_code, reply_text=refusal.reply_text)
