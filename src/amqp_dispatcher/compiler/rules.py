"""What RabbitMQ would refuse at declare time, and what is legal but almost surely a mistake.

Owns the E3xx codes and the W4xx warnings: the cross-entry checks on the built model, reserved
and over-long names wherever a name appears, entities declared twice, queue-type rules,
argument applicability and conflicts (an argument set twice among them), error policies, and
the warnings, bindings to exchanges the config does not declare and the original's empty x_*
keys among them. Points each diagnostic at a key or a value of the config; knows nothing of
the file's text, of imports or of YAML syntax.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from typing import TypeVar

from amqp_dispatcher.runtime.spec import ConsumerEntry, Exchange, Queue, Reject, Retry

from .arguments import CLASSIC, PREDECLARED_EXCHANGES, QUEUE_ARGUMENTS, QUORUM, STREAM, accepts
from .defaults import LEGACY_ARGUMENT_KEYS
from .diagnostics import (
    Anchor,
    ConfigPath,
    Diagnostic,
    at_key,
    at_value,
    closest,
    did_you_mean,
    error,
    shorten,
    warning,
)
from .model import Entry, Model
from .policies import POLICY_NAMES
from .refs import ImportRef

Consumer = Entry[ConsumerEntry[ImportRef]]
T = TypeVar("T")

_MAX_NAME_BYTES = 255


def check(model: Model) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    found += _exchanges(model)
    found += _queues(model)
    found += _bindings(model)
    found += _consumers(model)
    found += _policies(model)
    found += _names_referred_to(model)
    found += _legacy_empty_arguments(model)
    return found


def _legacy_empty_arguments(model: Model) -> Iterator[Diagnostic]:
    """The original sent an x_* key only when it was truthy; the model keeps that meaning."""
    for entry in model.queues:
        for key, value in entry.unsent.items():
            shown = '""' if value == "" else str(value)
            name = key.replace("_", "-")
            yield warning(
                "W409",
                f"{shown} is not sent to RabbitMQ: the original amqp-dispatcher sent an x_ key only when it was "
                "set to something other than empty or zero, and this keeps that meaning",
                at_key((*entry.path, key)),
                hints=(
                    f"to send {name} = {shown}, write it under arguments: {{{name}: {shown}}}; else remove the key",
                ),
            )


def _names_referred_to(model: Model) -> Iterator[Diagnostic]:
    """RabbitMQ's rules on names hold wherever a name appears, not only where it is declared.

    A consumer's queue, a parking queue, a binding's exchange, a dead-letter exchange and
    routing key, an alternate exchange: each goes over the wire as an AMQP short string (at
    most 255 bytes), and a queue that the service consumes or declares cannot start with
    `amq.`. Declarations themselves are checked in _exchanges and _queues.
    """
    declared_queues = {entry.spec.name for entry in model.queues}
    for entry in model.consumers:
        consumer, path = entry.spec, entry.path
        queue_path = (*path, "queue")
        if consumer.queue not in declared_queues:  # a declared one is checked, and reported, there
            yield from _consumed_queue_name(consumer.queue, queue_path)
        retry = consumer.on_error
        if isinstance(retry, Retry) and retry.parking_queue not in declared_queues:
            where = entry.origins["parking_queue"]
            yield from _name_rules(retry.parking_queue, "parking queue", where, passive=False)
    declared_exchanges = {entry.spec.name for entry in model.exchanges}
    for binding in model.bindings:
        if binding.spec.exchange not in declared_exchanges:  # a declared one is checked where it is
            exchange_path = (*binding.path, "exchange")
            yield from _name_rules(binding.spec.exchange, "exchange", exchange_path, passive=True, reserved=False)
    for queue in model.queues:
        for name in ("x-dead-letter-exchange", "x-dead-letter-routing-key"):
            value = queue.spec.arguments.get(name)
            if isinstance(value, str):
                what = "dead-letter exchange" if name.endswith("exchange") else "dead-letter routing key"
                yield from _name_rules(value, what, queue.origins[name], passive=True, reserved=False)
    for exchange in model.exchanges:
        alternate = exchange.spec.arguments.get("alternate-exchange")
        if isinstance(alternate, str):
            where = (*exchange.path, "arguments", "alternate-exchange")
            yield from _name_rules(alternate, "alternate exchange", where, passive=True, reserved=False)


def _exchanges(model: Model) -> Iterator[Diagnostic]:
    first_seen: dict[str, Entry[Exchange]] = {}
    for entry in model.exchanges:
        exchange, name_path = entry.spec, (*entry.path, "exchange")
        yield from _name_rules(exchange.name, "exchange", name_path, passive=exchange.passive)
        predeclared = PREDECLARED_EXCHANGES.get(exchange.name)
        if predeclared and predeclared != exchange.type and not exchange.passive:
            yield error(
                "E301",
                f"{exchange.name} is predeclared by RabbitMQ as a {predeclared} exchange, not {exchange.type}",
                at_value((*entry.path, "type")),
                hints=(f"remove this entry (it always exists), or write type: {predeclared}",),
            )
        yield from _twice(exchange.name, "exchange", name_path, entry, first_seen)
        if exchange.passive:
            settings = ("type", "durable", "auto_delete", "internal", "arguments")
            yield from _passive_settings(entry.path, settings, entry.written, queue=False)


def _queues(model: Model) -> Iterator[Diagnostic]:
    first_seen: dict[str, Entry[Queue]] = {}
    for entry in model.queues:
        queue, name_path = entry.spec, (*entry.path, "queue")
        yield from _name_rules(queue.name, "queue", name_path, passive=queue.passive)
        yield from _twice(queue.name, "queue", name_path, entry, first_seen)
        yield from _queue_type_rules(entry)
        yield from _argument_rules(entry, model)
        if queue.passive:
            settings = ("durable", "auto_delete", "exclusive", "arguments", *LEGACY_ARGUMENT_KEYS)
            yield from _passive_settings(entry.path, settings, entry.written, queue=True)


def _consumed_queue_name(name: str, path: ConfigPath) -> Iterator[Diagnostic]:
    yield from _name_rules(name, "queue", path, passive=False, reserved=False)
    if name.startswith("amq."):
        yield error(
            "E301",
            "queue names starting with `amq.` are reserved by RabbitMQ: no such queue can be declared, "
            "so this consumer would have nothing to read (403 ACCESS_REFUSED)",
            at_value(path),
            hints=("choose another queue name",),
        )


def _consumers(model: Model) -> Iterator[Diagnostic]:
    declared = {entry.spec.name: entry.spec for entry in model.queues}
    for entry in model.consumers:
        consumer = entry.spec
        queue = declared.get(consumer.queue)
        # Only where the config declares queues at all: a config without queues[] manages its
        # topology elsewhere (as the original's often did), and a warning per consumer is noise.
        if model.queue_names and consumer.queue not in model.queue_names:
            close = closest(consumer.queue, sorted(model.queue_names))
            hints = [did_you_mean(_quoted(close))] if close else []
            hints.append("declare it under queues (with passive: true to only check that it exists at start)")
            yield warning(
                "W402",
                f"queue {_quoted(consumer.queue)} is not declared under queues, so it must already exist",
                at_value((*entry.path, "queue")),
                hints=tuple(hints),
            )
        if queue is not None and _queue_type(queue) == STREAM and consumer.prefetch_count == 0:
            yield error(
                "E308",
                f"{_quoted(consumer.queue)} is a stream, and stream consumers need a prefetch; 0 means none",
                _prefetch(entry),
                hints=("set prefetch_count to 1 or more",),
            )
        if 0 < consumer.prefetch_count < consumer.consumer_count:
            yield _idle_instances(entry)


def _policies(model: Model) -> Iterator[Diagnostic]:
    """Each consumer's on_error against the queue it reads and the names retry queues take."""
    declared = {entry.spec.name: entry.spec for entry in model.queues}
    for entry in model.consumers:
        consumer, path = entry.spec, entry.path
        queue = declared.get(consumer.queue)
        is_retry = isinstance(consumer.on_error, Retry)
        if not is_retry and "retry" in entry.written:
            yield error(
                "E309",
                f"retry settings have no effect with on_error: {POLICY_NAMES[type(consumer.on_error)]}",
                at_key((*path, "retry")),
                hints=("add on_error: retry, or remove the retry settings",),
            )
        if is_retry:
            yield from _retry_rules(entry, queue, model)
        elif queue is not None and not queue.passive and "x-dead-letter-exchange" not in queue.arguments:
            yield from _dropping_policies(entry, queue)


def _retry_rules(entry: Consumer, queue: Queue | None, model: Model) -> Iterator[Diagnostic]:
    consumer, path = entry.spec, entry.path
    retry = consumer.on_error
    assert isinstance(retry, Retry)
    limit = queue.arguments.get("x-delivery-limit") if queue is not None else None
    if (
        queue is not None
        and isinstance(limit, int)
        and 0 <= limit < retry.max_attempts
        and _queue_type(queue) == QUORUM
    ):
        where = (*path, "retry", "max_attempts")
        yield error(
            "E309",
            f"max_attempts {retry.max_attempts} is above the queue's x-delivery-limit {limit}: "
            "the broker would drop or dead-letter the message before its last attempt",
            at_value(where).or_key((*path, "on_error")),
            hints=(f"lower max_attempts to {limit} or less, or raise x-delivery-limit",),
        )
    for name in sorted(set(retry.delay_queues)):
        size = _utf8_size(name)
        if name in model.queue_names:
            yield error(
                "E309",
                f"the retry delay queue {_quoted(name)} is also declared under queues",
                at_value((*path, "queue")),
                hints=("rename that queue: the retry policy declares this one itself",),
            )
        elif size is not None and size > _MAX_NAME_BYTES:
            yield error(
                "E309",
                f"the retry delay queue name {_quoted(name)} is {size} bytes long; AMQP allows at most 255",
                at_value((*path, "queue")),
                hints=("shorten the queue name",),
            )


def _dropping_policies(entry: Consumer, queue: Queue) -> Iterator[Diagnostic]:
    """Policies under which a failed message can vanish: worth saying at build time."""
    consumer, path = entry.spec, entry.path
    anchor = at_value((*path, "on_error")).or_key(path)
    if isinstance(consumer.on_error, Reject):
        yield warning(
            "W406",
            f"queue {_quoted(queue.name)} has no dead-letter exchange, so rejected messages are dropped",
            anchor,
            hints=("set x_dead_letter_exchange on the queue, or use on_error: retry",),
        )
    elif _queue_type(queue) == QUORUM and "x-delivery-limit" not in queue.arguments:
        yield warning(
            "W407",
            f"quorum queue {_quoted(queue.name)} has no dead-letter exchange: RabbitMQ 4.0 and later drop a message "
            "that fails 20 times (the default x-delivery-limit)",
            anchor,
            hints=("set x_dead_letter_exchange on the queue, or use on_error: retry to park failing messages",),
        )


def _idle_instances(entry: Consumer) -> Diagnostic:
    consumer = entry.spec
    idle = consumer.consumer_count - consumer.prefetch_count
    return warning(
        "W401",
        f"prefetch_count {consumer.prefetch_count} is below consumer_count {consumer.consumer_count}: "
        f"{idle} instance{'s' if idle > 1 else ''} will never get a message",
        _prefetch(entry),
        hints=(f"raise prefetch_count to at least {consumer.consumer_count} (the default is 1)",),
    )


def _prefetch(entry: Consumer) -> Anchor:
    return at_value((*entry.path, "prefetch_count")).or_key(entry.path)


def _name_rules(
    name: str, kind: str, path: ConfigPath, *, passive: bool, reserved: bool = True
) -> Iterator[Diagnostic]:
    """Length and encoding (everywhere), and, where the service declares or checks the entity, the
    reserved `amq.` prefix, which only RabbitMQ's predeclared exchanges may carry."""
    span = at_value(path)  # the same for every diagnostic below
    size = _utf8_size(name)
    noun = kind if kind.endswith("key") else f"{kind} name"
    if size is None:
        yield error("E302", f"the {noun} is not valid Unicode text", span, path)
    elif size > _MAX_NAME_BYTES:
        yield error(
            "E302",
            f"the {noun} is {size} bytes long; AMQP allows at most {_MAX_NAME_BYTES}",
            span,
            path,
            hints=("shorten it (UTF-8 characters outside ASCII take 2 to 4 bytes each)",),
        )
    if not reserved or not name.startswith("amq.") or (kind == "exchange" and name in PREDECLARED_EXCHANGES):
        return
    if passive:
        yield error(
            "E301",
            f"{kind} names starting with `amq.` are reserved by RabbitMQ, and no {kind} of this name is one it "
            "creates for every vhost, so none can exist to check (404 NOT_FOUND)",
            span,
            path,
            hints=(f"use the {kind}'s real name",),
        )
    else:
        yield error(
            "E301",
            f"{kind} names starting with `amq.` are reserved by RabbitMQ (403 ACCESS_REFUSED)",
            span,
            path,
            hints=("choose another name",),
        )


def _twice(
    name: str, kind: str, path: ConfigPath, entry: Entry[T], first_seen: dict[str, Entry[T]]
) -> Iterator[Diagnostic]:
    """The second declaration of a name, with the line of the first."""
    if name not in first_seen:
        first_seen[name] = entry
        return
    first = first_seen[name].name_line
    notes = (f"first declared at line {first}",) if first else ()
    yield error(
        "E303",
        f"{kind} {_quoted(name)} is declared twice",
        at_value(path),
        hints=(f"merge the two entries: {_article(kind)} {kind} is declared once, with all its settings",),
        notes=notes,
    )


def _queue_type(queue: Queue) -> str:
    return str(queue.arguments.get("x-queue-type", CLASSIC))


def _queue_type_rules(entry: Entry[Queue]) -> Iterator[Diagnostic]:
    queue, queue_type = entry.spec, _queue_type(entry.spec)
    if queue_type == CLASSIC or queue.passive:
        return
    refused = (
        ("durable", not queue.durable, "must be durable"),
        ("exclusive", queue.exclusive, "cannot be exclusive"),
        ("auto_delete", queue.auto_delete, "cannot be auto-delete"),
    )
    for key, is_refused, rule in refused:
        if is_refused:
            path = (*entry.path, key)
            yield error(
                "E305",
                f"a {queue_type} queue {rule} (406 PRECONDITION_FAILED)",
                at_value(path),
                hints=(f"remove `{key}`, or use a classic queue",),
            )


def _argument_rules(entry: Entry[Queue], model: Model) -> Iterator[Diagnostic]:
    queue, queue_type = entry.spec, _queue_type(entry.spec)
    for name, path in entry.repeated.items():
        legacy = entry.origins[name][-1]
        yield error(
            "E307",
            f"argument {name} is set twice, here and by `{legacy}`",
            at_key(path),
            hints=(f"keep one of them; `{legacy}` is the original amqp-dispatcher's spelling",),
        )
    for name in queue.arguments:
        path = entry.origins[name]
        if name not in QUEUE_ARGUMENTS:
            yield _unknown_argument(name, path)
        elif not accepts(queue_type, name) and not queue.passive:
            allowed = " and ".join(sorted(QUEUE_ARGUMENTS[name]))
            yield error(
                "E306",
                f"{queue_type} queues refuse {name} (406 PRECONDITION_FAILED); it is for {allowed} queues",
                at_key(path),
                hints=("remove it, or change the queue type",),
            )
    if "x-dead-letter-routing-key" in queue.arguments and "x-dead-letter-exchange" not in queue.arguments:
        path = entry.origins["x-dead-letter-routing-key"]
        yield error(
            "E307",
            "a dead-letter routing key needs a dead-letter exchange (406 PRECONDITION_FAILED)",
            at_key(path),
            hints=(
                'add x_dead_letter_exchange; for the default exchange, write arguments: {x-dead-letter-exchange: ""}',
            ),
        )
    dead_letter_exchange = queue.arguments.get("x-dead-letter-exchange")
    if isinstance(dead_letter_exchange, str) and not _is_known_exchange(
        dead_letter_exchange, model, allow_default=True
    ):
        path = entry.origins["x-dead-letter-exchange"]
        yield warning(
            "W405",
            f"dead-letter exchange {_quoted(dead_letter_exchange)} is not declared under exchanges; "
            "if it does not exist, RabbitMQ drops dead-lettered messages",
            at_value(path),
            hints=("declare it under exchanges (passive: true if another service owns it)",),
        )


def _unknown_argument(name: str, path: ConfigPath) -> Diagnostic:
    close = closest(name, QUEUE_ARGUMENTS, cutoff=0.75)
    hints = (did_you_mean(f"`{close}`"),) if close else ("RabbitMQ accepts unknown arguments and ignores them",)
    return warning("W403", f"RabbitMQ does not know the queue argument {name}", at_key(path), path, hints=hints)


def _bindings(model: Model) -> Iterator[Diagnostic]:
    for entry in model.bindings:
        binding = entry.spec
        exchange_path = (*entry.path, "exchange")
        if binding.exchange == "":
            yield error(
                "E301",
                "the default exchange cannot be bound (403 ACCESS_REFUSED); it already routes to every queue by name",
                at_value(exchange_path),
                hints=('remove this binding: publish to exchange "" with the queue name as routing key',),
            )
        elif not _is_known_exchange(binding.exchange, model, allow_default=False):
            yield _undeclared_exchange(binding.exchange, exchange_path, model)
        size = _utf8_size(binding.routing_key)
        if size is not None and size > _MAX_NAME_BYTES:
            key_path = (*entry.path, "routing_key")
            yield error(
                "E302",
                f"the routing key is {size} bytes long; AMQP allows at most {_MAX_NAME_BYTES}",
                at_value(key_path),
                hints=("shorten it; topic patterns can match the rest with # or *",),
            )


def _undeclared_exchange(name: str, path: ConfigPath, model: Model) -> Diagnostic:
    """A warning: the original left exchanges to the broker, so its configs bind to exchanges that
    other services own. An `amq.` name nobody can declare is an error."""
    declared = sorted(model.exchange_names)
    close = closest(name, [*declared, *PREDECLARED_EXCHANGES])
    hints = [did_you_mean(f"`{close}`")] if close else []
    if name.startswith("amq."):
        return error(
            "E301",
            f"exchange {_quoted(name)} is not one RabbitMQ predeclares, and `amq.` names are reserved, "
            "so no one can create it (404 NOT_FOUND)",
            at_value(path),
            hints=(*hints, f"use one of {', '.join(PREDECLARED_EXCHANGES)}, or another name"),
        )
    hints += [
        f"to have this service create it, declare it under exchanges: - exchange: {shorten(name)}",
        f"if another service owns it, declare it with passive: true, so that the service checks it at start: "
        f"- {{exchange: {shorten(name)}, passive: true}}",
    ]
    return warning(
        "W408",
        f"exchange {_quoted(name)} is not declared, so the service cannot start unless it already exists "
        "(404 NOT_FOUND on a fresh broker)",
        at_value(path),
        hints=tuple(hints),
    )


def _passive_settings(
    path: ConfigPath, keys: tuple[str, ...], written_keys: Set[str], *, queue: bool
) -> Iterator[Diagnostic]:
    written = [key for key in keys if key in written_keys]
    if written:
        first = (*path, written[0])
        hints = ["remove those settings, or drop passive: true to declare it with them"]
        if queue:
            hints.append(
                "the original amqp-dispatcher ignored passive and always declared queues; here passive: true "
                "only checks, and the service stops at start if the queue does not exist"
            )
        yield warning(
            "W404",
            f"passive: true only checks that it exists, so {', '.join(written)} "
            f"{'is' if len(written) == 1 else 'are'} ignored",
            at_key(first),
            hints=tuple(hints),
        )


def _is_known_exchange(name: str, model: Model, *, allow_default: bool) -> bool:
    return name in model.exchange_names or name in PREDECLARED_EXCHANGES or (allow_default and name == "")


def _quoted(name: str) -> str:
    """A name in a message: quoted, shortened, nothing unprintable."""
    return f"'{shorten(name)}'"


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _utf8_size(text: str) -> int | None:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None
