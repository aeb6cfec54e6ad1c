"""Topology: exchanges, queues and bindings declared before consuming starts.

Owns the order of declarations (exchanges, then queues, then bindings, so bindings work on a
fresh broker) and what a refusal tells the operator. Passive entries are only checked. Runs on
a channel of its own, closed afterwards. Knows nothing of consumers.
"""

from __future__ import annotations

from .errors import DeclarationRefused
from .logs import TOPOLOGY, get_logger
from .spec import LiveService
from .transport import Channel, Connection

log = get_logger(TOPOLOGY)

_ADVICE = {
    403: "the user lacks the configure permission on it, or the name is reserved",
    404: "it does not exist: create it, declare it in the config, or drop passive: true",
    405: "another connection owns it (exclusive)",
    406: "it exists with other settings: change the config to match, or delete it so it can be declared again",
}
_PASSIVE_QUEUE = (
    "it does not exist, and passive: true only checks that it does, so the service stops (the original "
    "amqp-dispatcher ignored passive and created the queue); to have the service create it, remove "
    "passive: true from queue {name!r} in the config"
)
_PASSIVE_EXCHANGE = (
    "it does not exist, and passive: true only checks that it does; create it first (the service that owns "
    "it declares it), or remove passive: true from exchange {name!r} in the config to have this service create it"
)


def declare(connection: Connection, service: LiveService) -> None:
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


def declare_on(channel: Channel, service: LiveService) -> None:
    """Exchanges, then queues, then bindings. Declaring is idempotent, so this also restores
    whatever was deleted while the service ran."""
    for exchange in service.exchanges:
        try:
            channel.declare_exchange(exchange)
        except DeclarationRefused as refusal:
            advice = _PASSIVE_EXCHANGE.format(name=exchange.name) if exchange.passive else None
            raise explained(refusal, advice) from refusal
    for queue in service.queues:
        try:
            channel.declare_queue(queue)
        except DeclarationRefused as refusal:
            raise explained(refusal, _PASSIVE_QUEUE.format(name=queue.name) if queue.passive else None) from refusal
    for queue in service.queues:
        for binding in queue.bindings:
            try:
                channel.bind(queue.name, binding)
            except DeclarationRefused as refusal:
                raise explained(refusal, _missing_exchange(binding.exchange, service)) from refusal


def _missing_exchange(name: str, service: LiveService) -> str | None:
    if any(exchange.name == name for exchange in service.exchanges):
        return None
    return (
        f"exchange {name!r} does not exist, and the config does not declare it: declare it under exchanges "
        "(passive: true if another service owns it), or create it before the service starts"
    )


def explained(refusal: DeclarationRefused, advice_for_404: str | None = None) -> DeclarationRefused:
    """The refusal with what it means for the operator."""
    code = refusal.reply_code or 0
    advice = advice_for_404 if code == 404 and advice_for_404 else _ADVICE.get(code)
    if advice is None:
        return refusal
    return DeclarationRefused(f"{refusal}; {advice}", reply_code=refusal.reply_code, reply_text=refusal.reply_text)
