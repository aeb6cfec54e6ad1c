"""The model: validated data to the runtime's own frozen objects, every default applied here.

Owns applying the defaults (defaults.py), the merging of the original's `x_*` queue keys into
`arguments`, and where each built entry is written (its path, its line, the keys it writes):
facts the later stages' diagnostics need and the runtime does not.
Builds in one pass, and only the entries that passed the schema; the whole `Service`, with the
code referred to by `ImportRef`, only when all did. Reports nothing; knows nothing of
RabbitMQ's rules or of imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Http, Queue, Service

from .defaults import (
    BINDING_DEFAULTS,
    CONSUMER_DEFAULTS,
    EXCHANGE_DEFAULTS,
    HTTP_DEFAULTS,
    LEGACY_ARGUMENT_KEYS,
    QUEUE_DEFAULTS,
    RETRY_DEFAULTS,
    SERVICE_DEFAULTS,
)
from .diagnostics import ConfigPath
from .policies import error_policy, policy_queues
from .refs import ImportRef
from .source import SourceDocument

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry(Generic[T]):
    """A built entry and where the config writes it: what diagnostics need beside the spec."""

    path: ConfigPath
    spec: T
    line: int  # where the entry is written; the generated package names it above a consumer
    name_line: int = 0  # where an exchange's or a queue's name is written
    written: frozenset[str] = frozenset()  # the keys its mapping writes
    # Where a value the model derived was written: a queue's effective arguments (an x_* key or
    # arguments.<name>), a consumer's parking queue (its own key, or the queue it is named after).
    origins: Mapping[str, ConfigPath] = field(default_factory=dict)
    unsent: Mapping[str, Any] = field(default_factory=dict)  # x_* keys written empty or zero
    repeated: Mapping[str, ConfigPath] = field(default_factory=dict)  # arguments an x_* key sets too


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """The built config: the service when every entry passed the schema, and each built entry.

    Finer-grained than whole entries, so that a typo elsewhere in an entry hides nothing: every
    well-formed class reference is imported, every well-formed binding checked.
    """

    service: Service[ImportRef, ImportRef] | None
    exchanges: tuple[Entry[Exchange], ...]
    queues: tuple[Entry[Queue], ...]
    bindings: tuple[Entry[Binding], ...]
    consumers: tuple[Entry[ConsumerEntry[ImportRef]], ...]
    consumer_refs: tuple[Entry[ImportRef], ...]
    startup_handler: Entry[ImportRef] | None
    # Names written anywhere, even in broken entries, so that cross-checks raise no false alarms.
    exchange_names: frozenset[str]
    queue_names: frozenset[str]


def build(document: SourceDocument, broken: Set[ConfigPath], config_sha256: str) -> Model:
    """Build every entry whose subtree has no error; `broken` holds the paths of errors."""
    data = document.data if isinstance(document.data, dict) else {}
    where = _Where(document, broken)
    bindings = tuple(entry for path, raw in _items(data, "queues") for entry in _bindings(raw, path, where))
    refs = {entry.path[:2]: entry for entry in _consumer_refs(data, where)}
    exchanges = tuple(_exchange(raw, path, where) for path, raw in where.clean(data, "exchanges"))
    queues = tuple(_queue(raw, path, bindings, where) for path, raw in where.clean(data, "queues"))
    consumers = tuple(_consumer(raw, path, refs[path].spec, where) for path, raw in where.clean(data, "consumers"))
    handler = _startup_handler(data, where)
    service = None if broken else _service(data, config_sha256, handler, exchanges, queues, consumers)
    return Model(
        service=service,
        exchanges=exchanges,
        queues=queues,
        bindings=bindings,
        consumers=consumers,
        consumer_refs=tuple(refs.values()),
        startup_handler=handler,
        exchange_names=_names(data, "exchanges", "exchange"),
        queue_names=_names(data, "queues", "queue"),
    )


class _Where:
    """The document as the model reads it: which paths are sound, and on which line each is."""

    def __init__(self, document: SourceDocument, broken: Set[ConfigPath]) -> None:
        self.document = document
        self.broken = broken

    def is_clean(self, path: ConfigPath) -> bool:
        return not any(bad[: len(path)] == path for bad in self.broken)

    def clean(self, data: Mapping[str, Any], key: str) -> list[tuple[ConfigPath, Any]]:
        return [(path, raw) for path, raw in _items(data, key) if self.is_clean(path)]

    def line(self, path: ConfigPath) -> int:
        span = self.document.value_span(path)
        return span.line if span else 0


def _service(
    data: Mapping[str, Any],
    config_sha256: str,
    handler: Entry[ImportRef] | None,
    exchanges: tuple[Entry[Exchange], ...],
    queues: tuple[Entry[Queue], ...],
    consumers: tuple[Entry[ConsumerEntry[ImportRef]], ...],
) -> Service[ImportRef, ImportRef]:
    declared = tuple(entry.spec for entry in queues)
    return Service(
        **_settings({**SERVICE_DEFAULTS, **data}),
        config_sha256=config_sha256,
        startup_handler=handler.spec if handler else None,
        exchanges=tuple(entry.spec for entry in exchanges),
        queues=declared + policy_queues((queue.name for queue in declared), (entry.spec for entry in consumers)),
        consumers=tuple(entry.spec for entry in consumers),
    )


# The service's own settings are read by their field's name and written as its declared type, so
# that a new setting needs no line here: a field in runtime/spec.py, a key in the schema and a
# default in defaults.py. (JSON Schema counts 20.0 as an integer and 20 as a number.)
_AS_TYPE: Mapping[str, Any] = {
    "str": str,
    "bool": bool,
    "int": int,
    "float": float,
    "float | None": lambda value: None if value is None else float(value),
    "Http | None": lambda value: None if value is None else _http(value),
    # processes: a number (the schema's integer takes 2.0 too: it is written 2), or "auto"
    "int | str": lambda value: int(value) if isinstance(value, float) else value,
}
_BUILT_FROM_ENTRIES = frozenset({"config_sha256", "startup_handler", "exchanges", "queues", "consumers"})


def _http(raw: Mapping[str, Any]) -> Http:
    values = {**HTTP_DEFAULTS, **raw}
    return Http(port=int(values["port"]), host=values["host"])


def _settings(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        spec.name: _AS_TYPE[str(spec.type)](values[spec.name])
        for spec in dataclasses.fields(Service)
        if spec.name not in _BUILT_FROM_ENTRIES
    }


def _exchange(raw: Mapping[str, Any], path: ConfigPath, where: _Where) -> Entry[Exchange]:
    values = {**EXCHANGE_DEFAULTS, **raw}
    exchange = Exchange(
        name=values["exchange"],
        type=values["type"],
        durable=values["durable"],
        auto_delete=values["auto_delete"],
        internal=values["internal"],
        passive=values["passive"],
        arguments=_sorted(values["arguments"]),
    )
    name_line = where.line((*path, "exchange"))
    return Entry(path=path, spec=exchange, line=where.line(path), name_line=name_line, written=frozenset(raw))


def _queue(
    raw: Mapping[str, Any], path: ConfigPath, bindings: tuple[Entry[Binding], ...], where: _Where
) -> Entry[Queue]:
    """The queue with the legacy x_* keys merged into its arguments (the x_* key wins a clash)."""
    values = {**QUEUE_DEFAULTS, **raw}
    arguments, origins, unsent = _legacy_arguments(values, path)
    repeated: dict[str, ConfigPath] = {}
    for name, value in values["arguments"].items():
        written = (*path, "arguments", name)
        if name in arguments:
            repeated[name] = written
        else:
            arguments[name], origins[name] = value, written
    queue = Queue(
        name=values["queue"],
        durable=values["durable"],
        auto_delete=values["auto_delete"],
        exclusive=values["exclusive"],
        passive=values["passive"],
        arguments=_sorted(arguments),
        bindings=tuple(entry.spec for entry in bindings if entry.path[:2] == path),
    )
    return Entry(
        path=path,
        spec=queue,
        line=where.line(path),
        name_line=where.line((*path, "queue")),
        written=frozenset(raw),
        origins=origins,
        unsent=unsent,
        repeated=repeated,
    )


def _legacy_arguments(
    values: Mapping[str, Any], path: ConfigPath
) -> tuple[dict[str, Any], dict[str, ConfigPath], dict[str, Any]]:
    """The arguments the x_* keys set, where each is written, and the keys not sent: as the
    original, which sent an x_ key only when it was truthy (rules.py says so, W409)."""
    arguments: dict[str, Any] = {}
    origins: dict[str, ConfigPath] = {}
    unsent: dict[str, Any] = {}
    for key in LEGACY_ARGUMENT_KEYS:
        value = values[key]
        if value == "" or value == 0:
            unsent[key] = value
        elif value is not None:
            name = key.replace("_", "-")
            arguments[name], origins[name] = value, (*path, key)
    return arguments, origins, unsent


def _bindings(raw: Any, path: ConfigPath, where: _Where) -> Iterator[Entry[Binding]]:
    """A queue's bindings, each on its own: a binding is checked even when its queue is broken."""
    for binding_path, binding in _items(raw if isinstance(raw, dict) else {}, "bindings", path):
        if where.is_clean(binding_path):
            yield Entry(path=binding_path, spec=build_binding(binding), line=where.line(binding_path))


def build_binding(raw: Mapping[str, Any]) -> Binding:
    values = {**BINDING_DEFAULTS, **raw}
    return Binding(
        exchange=values["exchange"],
        routing_key=values["routing_key"],
        arguments=_sorted(values["arguments"]),
    )


def _consumer_refs(data: Mapping[str, Any], where: _Where) -> Iterator[Entry[ImportRef]]:
    """Every well-formed consumer reference, even in an entry broken elsewhere."""
    for path, raw in _items(data, "consumers"):
        ref = raw.get("consumer") if isinstance(raw, dict) else None
        ref_path = (*path, "consumer")
        if isinstance(ref, str) and where.is_clean(ref_path):
            yield Entry(path=ref_path, spec=ImportRef.parse(ref), line=where.line(ref_path))


def _startup_handler(data: Mapping[str, Any], where: _Where) -> Entry[ImportRef] | None:
    handler, path = data.get("startup_handler"), ("startup_handler",)
    if not isinstance(handler, str) or not where.is_clean(path):
        return None
    return Entry(path=path, spec=ImportRef.parse(handler), line=where.line(path))


def _consumer(
    raw: Mapping[str, Any], path: ConfigPath, ref: ImportRef, where: _Where
) -> Entry[ConsumerEntry[ImportRef]]:
    values = {**CONSUMER_DEFAULTS, **raw}
    retry = {**RETRY_DEFAULTS, **(values.get("retry") or {})}
    consumer = ConsumerEntry(
        consumer=ref,
        queue=values["queue"],
        consumer_count=int(values["consumer_count"]),
        prefetch_count=int(values["prefetch_count"]),
        on_error=error_policy(values["on_error"], values["queue"], retry),
    )
    written = "parking_queue" in (values.get("retry") or {})
    parking = (*path, "retry", "parking_queue") if written else (*path, "queue")
    return Entry(
        path=path,
        spec=consumer,
        line=where.line(path),
        written=frozenset(raw),
        origins={"parking_queue": parking},
    )


def _items(data: Mapping[str, Any], key: str, within: ConfigPath = ()) -> list[tuple[ConfigPath, Any]]:
    """(path, item) of each item of a list, wherever it is written."""
    value = data.get(key)
    return [((*within, key, index), item) for index, item in enumerate(value)] if isinstance(value, list) else []


def _names(data: Mapping[str, Any], key: str, name_key: str) -> frozenset[str]:
    names = (raw.get(name_key) if isinstance(raw, dict) else None for _, raw in _items(data, key))
    return frozenset(name for name in names if isinstance(name, str))


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
