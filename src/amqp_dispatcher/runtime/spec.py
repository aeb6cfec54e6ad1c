"""The frozen description of a service: what the generated package builds and the runtime runs.

Owns the data classes that `SERVICE = Service(...)` instantiates. They hold no behaviour,
apply no defaults (the compiler writes every effective value out) and import nothing but
the standard library, so a production install needs no build-time dependency to load them.
The compiler builds these same objects, with `module:name` references where the generated
package has the imported classes (hence the type parameters), and writes them out as code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar


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
class Requeue:
    """on_error: requeue. A failed message goes back to its queue at once (the original's behaviour)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """on_error: reject. A failed message is rejected without requeue: the queue's dead-letter
    exchange receives it, and a queue without one drops it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """on_error: retry. `delay_queues[i]` holds a message for `delays[i]` seconds before attempt
    i + 2; after `max_attempts` failed attempts it goes to `parking_queue`."""

    max_attempts: int
    delays: tuple[float, ...]
    delay_queues: tuple[str, ...]
    parking_queue: str


# What happens to a message whose consume raised: one of three, so that no combination of a
# policy name and settings that do not belong to it can be written down.
ErrorPolicy = Requeue | Reject | Retry

# How the config's code is referred to: the class or function itself in a generated package,
# its `module:name` reference while the compiler builds the same objects.
C = TypeVar("C", covariant=True)
H = TypeVar("H", covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerEntry(Generic[C]):
    """One `consumers[]` entry: `consumer_count` instances of a class reading one queue."""

    consumer: C
    queue: str
    consumer_count: int
    prefetch_count: int
    on_error: ErrorPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Service(Generic[C, H]):
    """The whole service: topology to declare, consumers to run, and service-level settings."""

    name: str
    config_sha256: str
    monkey_patch: bool
    heartbeat: int
    shutdown_timeout: float
    startup_timeout: float
    blocking_threshold: float | None  # None: derived from the heartbeat at start
    on_unroutable: str  # "log" or "raise": what amqp.publish does with a message no queue receives
    startup_handler: H | None
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    consumers: tuple[ConsumerEntry[C], ...]


# What the runtime runs: the service with its classes and handler imported.
ConsumerFactory = Callable[[], ConsumerProtocol]
StartupHandler = Callable[[], object]
LiveEntry = ConsumerEntry[ConsumerFactory]
LiveService = Service[ConsumerFactory, StartupHandler]
