"""The frozen description of a service: what the generated package builds and the runtime runs.

Owns the data classes that `SERVICE = Service(...)` instantiates. They hold no behaviour,
apply no defaults (the compiler writes every effective value out) and import nothing but
the standard library, so a production install needs no build-time dependency to load them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol


class ConsumerProtocol(Protocol):
    """The classic consumer contract: one instance handles one message at a time."""

    def consume(self, amqp: Any, msg: Any) -> object: ...

    def shutdown(self, exception: BaseException | None = None) -> object: ...


def _freeze(instance: object, name: str) -> None:
    """Replace a mapping field by a read-only view of a private copy."""
    object.__setattr__(instance, name, MappingProxyType(dict(getattr(instance, name))))


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """An exchange declared (or, when passive, only checked) before consuming starts."""

    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    passive: bool
    arguments: Mapping[str, Any]

    def __post_init__(self) -> None:
        _freeze(self, "arguments")


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A queue.bind from an exchange to the queue that holds it."""

    exchange: str
    routing_key: str
    arguments: Mapping[str, Any]

    def __post_init__(self) -> None:
        _freeze(self, "arguments")


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    """A queue with its effective arguments (the legacy x_* keys merged in) and bindings."""

    name: str
    durable: bool
    auto_delete: bool
    exclusive: bool
    passive: bool
    arguments: Mapping[str, Any]
    bindings: tuple[Binding, ...]

    def __post_init__(self) -> None:
        _freeze(self, "arguments")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """on_error: retry. `delay_queues[i]` holds a message for `delays[i]` seconds before attempt i + 2."""

    max_attempts: int
    delays: tuple[float, ...]
    delay_queues: tuple[str, ...]
    parking_queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerEntry:
    """One `consumers[]` entry: `consumer_count` instances of a class reading one queue."""

    consumer: Callable[[], ConsumerProtocol]
    queue: str
    consumer_count: int
    prefetch_count: int
    on_error: str  # "requeue", "reject" or "retry"
    retry: RetryPolicy | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """The whole service: topology to declare, consumers to run, and service-level settings."""

    name: str
    config_sha256: str
    monkey_patch: bool
    heartbeat: int
    shutdown_timeout: float
    startup_timeout: float
    blocking_threshold: float | None  # None: derived from the heartbeat at start
    # "log" or "raise": what amqp.publish does with a message no queue receives. The default keeps
    # packages generated before the setting existed importable.
    on_unroutable: str = "log"
    startup_handler: Callable[[], object] | None
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    consumers: tuple[ConsumerEntry, ...]
