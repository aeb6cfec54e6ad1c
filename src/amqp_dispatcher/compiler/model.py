"""The model: validated data to frozen objects, with every default applied here and nowhere else.

Owns the defaults, the merging of the original's `x_*` queue keys into `arguments`, and the
compiler-side consumer entry (which names its class by reference, not by object). Runs only on
entries that passed the schema; knows nothing of RabbitMQ's rules or of imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from amqp_dispatcher.runtime.spec import Binding, Exchange, Queue, RetryPolicy

from .diagnostics import ConfigPath, Diagnostic, error
from .refs import ImportRef
from .source import SourceDocument

# The one place defaults live. The schema repeats them for editors; a test keeps them equal.
SERVICE_DEFAULTS: Mapping[str, Any] = {
    "name": "amqp-dispatcher",
    "startup_handler": None,
    "monkey_patch": False,
    "heartbeat": 20,
    "shutdown_timeout": 30.0,
    "startup_timeout": 60.0,
    "blocking_threshold": None,
    "on_unroutable": "log",
    "queues": [],
    "exchanges": [],
}
CONSUMER_DEFAULTS: Mapping[str, Any] = {"consumer_count": 1, "prefetch_count": 1, "on_error": "requeue"}
RETRY_DEFAULTS: Mapping[str, Any] = {"max_attempts": 5, "delays": [5, 30, 120]}
QUEUE_DEFAULTS: Mapping[str, Any] = {
    "durable": True,
    "auto_delete": False,
    "exclusive": False,
    "passive": False,
    "x_dead_letter_exchange": None,
    "x_dead_letter_routing_key": None,
    "x_max_length": None,
    "x_expires": None,
    "x_message_ttl": None,
    "x_queue_type": None,
    "arguments": {},
    "bindings": [],
}
BINDING_DEFAULTS: Mapping[str, Any] = {"routing_key": "", "arguments": {}}
EXCHANGE_DEFAULTS: Mapping[str, Any] = {
    "type": "direct",
    "durable": True,
    "auto_delete": False,
    "internal": False,
    "passive": False,
    "arguments": {},
}
LEGACY_ARGUMENT_KEYS = (
    "x_dead_letter_exchange",
    "x_dead_letter_routing_key",
    "x_max_length",
    "x_expires",
    "x_message_ttl",
    "x_queue_type",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerModel:
    """A consumers[] entry as the compiler sees it: the class is still a reference."""

    consumer: ImportRef
    queue: str
    consumer_count: int
    prefetch_count: int
    on_error: str
    retry: RetryPolicy | None
    line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceModel:
    """Everything the renderer writes out, every value effective."""

    name: str
    config_sha256: str
    monkey_patch: bool
    heartbeat: int
    shutdown_timeout: float
    startup_timeout: float
    blocking_threshold: float | None
    on_unroutable: str
    startup_handler: ImportRef | None
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    consumers: tuple[ConsumerModel, ...]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """A built entry with the config path it came from, for later diagnostics."""

    path: ConfigPath
    spec: T
    # Where each effective queue argument was written (an x_* key or arguments.<name>).
    argument_paths: Mapping[str, ConfigPath] = field(default_factory=dict)


@dataclass(slots=True)
class Parts:
    """The entries that passed the schema, built; the service is assembled only if all did."""

    exchanges: list[Entry[Exchange]] = field(default_factory=list)
    queues: list[Entry[Queue]] = field(default_factory=list)
    consumers: list[Entry[ConsumerModel]] = field(default_factory=list)
    # Finer-grained than whole entries, so that a typo elsewhere in an entry hides nothing:
    # every well-formed class reference is imported, every well-formed binding checked.
    consumer_refs: list[Entry[ImportRef]] = field(default_factory=list)
    bindings: list[Entry[Binding]] = field(default_factory=list)
    startup_handler: Entry[ImportRef] | None = None
    # Names written anywhere, even in broken entries, so cross-checks raise no false alarms.
    exchange_names: set[str] = field(default_factory=set)
    queue_names: set[str] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def build_parts(document: SourceDocument, broken: set[ConfigPath]) -> Parts:
    """Build every entry whose subtree has no error; `broken` holds the paths of errors."""
    data = document.data if isinstance(document.data, dict) else {}
    parts = Parts()
    for index, raw in _items(data, "exchanges"):
        path = ("exchanges", index)
        parts.exchange_names.update(_name(raw, "exchange"))
        if _is_clean(path, broken):
            parts.exchanges.append(Entry(path, build_exchange(raw)))
    for index, raw in _items(data, "queues"):
        path = ("queues", index)
        parts.queue_names.update(_name(raw, "queue"))
        if _is_clean(path, broken):
            queue, argument_paths = build_queue(raw, path, parts.diagnostics)
            parts.queues.append(Entry(path, queue, argument_paths))
        for binding_index, binding in _items(raw if isinstance(raw, dict) else {}, "bindings"):
            binding_path = (*path, "bindings", binding_index)
            if _is_clean(binding_path, broken):
                parts.bindings.append(Entry(binding_path, build_binding(binding)))
    for index, raw in _items(data, "consumers"):
        path = ("consumers", index)
        ref = raw.get("consumer") if isinstance(raw, dict) else None
        if isinstance(ref, str) and _is_clean((*path, "consumer"), broken):
            parts.consumer_refs.append(Entry((*path, "consumer"), ImportRef.parse(ref)))
        if _is_clean(path, broken):
            span = document.value_span(path)
            parts.consumers.append(Entry(path, build_consumer(raw, span.line if span else 0)))
    handler = data.get("startup_handler")
    if isinstance(handler, str) and _is_clean(("startup_handler",), broken):
        parts.startup_handler = Entry(("startup_handler",), ImportRef.parse(handler))
    return parts


def assemble(document: SourceDocument, parts: Parts, config_sha256: str) -> ServiceModel:
    """The whole service; call only when no stage reported an error."""
    settings = {**SERVICE_DEFAULTS, **document.data}
    return ServiceModel(
        name=settings["name"],
        config_sha256=config_sha256,
        monkey_patch=settings["monkey_patch"],
        heartbeat=int(settings["heartbeat"]),
        shutdown_timeout=float(settings["shutdown_timeout"]),
        startup_timeout=float(settings["startup_timeout"]),
        blocking_threshold=None if settings["blocking_threshold"] is None else float(settings["blocking_threshold"]),
        on_unroutable=settings["on_unroutable"],
        startup_handler=parts.startup_handler.spec if parts.startup_handler else None,
        exchanges=tuple(entry.spec for entry in parts.exchanges),
        queues=tuple(entry.spec for entry in parts.queues) + _policy_queues(parts),
        consumers=tuple(entry.spec for entry in parts.consumers),
    )


def _policy_queues(parts: Parts) -> tuple[Queue, ...]:
    """The queues of retry policies that the config does not declare itself, once each."""
    added: dict[str, Queue] = {}
    for entry in parts.consumers:
        if entry.spec.retry is not None:
            for queue in retry_queues(entry.spec.queue, entry.spec.retry):
                if queue.name not in parts.queue_names:
                    added.setdefault(queue.name, queue)
    return tuple(added.values())


def build_exchange(raw: Mapping[str, Any]) -> Exchange:
    values = {**EXCHANGE_DEFAULTS, **raw}
    return Exchange(
        name=values["exchange"],
        type=values["type"],
        durable=values["durable"],
        auto_delete=values["auto_delete"],
        internal=values["internal"],
        passive=values["passive"],
        arguments=_sorted(values["arguments"]),
    )


def build_queue(
    raw: Mapping[str, Any], path: ConfigPath, diagnostics: list[Diagnostic]
) -> tuple[Queue, dict[str, ConfigPath]]:
    """The queue with the legacy x_* keys merged into its arguments; a clash is an error."""
    values = {**QUEUE_DEFAULTS, **raw}
    arguments: dict[str, Any] = {}
    argument_paths: dict[str, ConfigPath] = {}
    for key in LEGACY_ARGUMENT_KEYS:
        value = values[key]
        if value is None:
            continue
        name = key.replace("_", "-")
        if value == "" or value == 0:  # as the original, which sent an x_ key only when it was truthy
            continue  # rules.py says so (W409)
        arguments[name] = value
        argument_paths[name] = (*path, key)
    for name, value in values["arguments"].items():
        if name in arguments:
            legacy = argument_paths[name][-1]
            diagnostics.append(
                error(
                    "E307",
                    f"argument {name} is set twice, here and by `{legacy}`",
                    None,
                    (*path, "arguments", name),
                    hints=(f"keep one of them; `{legacy}` is the original amqp-dispatcher's spelling",),
                )
            )
            continue
        arguments[name] = _integral(value)
        argument_paths[name] = (*path, "arguments", name)
    queue = Queue(
        name=values["queue"],
        durable=values["durable"],
        auto_delete=values["auto_delete"],
        exclusive=values["exclusive"],
        passive=values["passive"],
        arguments=_sorted({name: _integral(value) for name, value in arguments.items()}),
        bindings=tuple(build_binding(binding) for binding in values["bindings"]),
    )
    return queue, argument_paths


def build_binding(raw: Mapping[str, Any]) -> Binding:
    values = {**BINDING_DEFAULTS, **raw}
    return Binding(
        exchange=values["exchange"],
        routing_key=values["routing_key"],
        arguments=_sorted(values["arguments"]),
    )


def build_consumer(raw: Mapping[str, Any], line: int) -> ConsumerModel:
    values = {**CONSUMER_DEFAULTS, **raw}
    retry = build_retry(values["queue"], values.get("retry") or {}) if values["on_error"] == "retry" else None
    return ConsumerModel(
        consumer=ImportRef.parse(values["consumer"]),
        queue=values["queue"],
        consumer_count=int(values["consumer_count"]),
        prefetch_count=int(values["prefetch_count"]),
        on_error=values["on_error"],
        retry=retry,
        line=line,
    )


def build_retry(queue: str, raw: Mapping[str, Any]) -> RetryPolicy:
    values = {**RETRY_DEFAULTS, **raw}
    delays = tuple(float(delay) for delay in values["delays"])
    return RetryPolicy(
        max_attempts=int(values["max_attempts"]),
        delays=delays,
        delay_queues=tuple(f"{queue}.retry.{_delay_label(delay)}" for delay in delays),
        parking_queue=values.get("parking_queue") or f"{queue}.parked",
    )


def retry_queues(queue: str, retry: RetryPolicy) -> list[Queue]:
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
        arguments=_sorted(arguments),
        bindings=(),
    )


def _delay_label(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def _items(data: Mapping[str, Any], key: str) -> list[tuple[int, Any]]:
    value = data.get(key)
    return list(enumerate(value)) if isinstance(value, list) else []


def _name(raw: Any, key: str) -> set[str]:
    name = raw.get(key) if isinstance(raw, dict) else None
    return {name} if isinstance(name, str) else set()


def _is_clean(path: ConfigPath, broken: set[ConfigPath]) -> bool:
    return not any(bad[: len(path)] == path for bad in broken)


def _sorted(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments in name order: their order means nothing to AMQP, and output must be stable."""
    return {name: _integral(arguments[name]) for name in sorted(arguments)}


def _integral(value: Any) -> Any:
    """JSON Schema counts 10.0 as an integer; AMQP tables need the int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value
