"""`python -m <package> plan`: what the service's declarations would meet on the broker, like `terraform plan`.

Owns the plan: for every exchange, queue and binding of the service, whether its declaration
would create it (+), find it as configured (=), or conflict with it (!: RabbitMQ would refuse
the declaration, or a policy overrides a configured value), and the bindings on the broker the
config does not know (?) and those that cannot be checked (~); command.py prints it as text or
JSON (docs/plan.md). Found read-only, on the service's own connection settings:

- Over AMQP, through the transport seam, on a fresh channel per check (a refusal closes it): a
  passive declare tells whether the entity exists; if it does, the service's own declaration
  follows at once on the same channel, which RabbitMQ either refuses (406 naming the first
  difference, 405 for an exclusive queue) or accepts, changing nothing (but the countdown of a
  classic queue's x-expires, which any declaration restarts). If another client deletes the
  entity in the moment between the two, that declaration creates it, exactly as the service
  would: the one way plan can create anything. Bindings cannot be listed this way.
- With the management API, nothing is declared: management.py reads and judges what it shows.

Passive entities are only checked: they must exist. Knows nothing of pika or HTTP.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from . import transports
from .errors import BrokerError, ConnectionLost, DeclarationRefused, ExitStatus, QueueUnavailable
from .logs import safe
from .settings import ConnectionSettings
from .spec import Exchange, LiveService, Queue
from .transport import Channel, Connection, Transport

if TYPE_CHECKING:
    from .management import Management

Kind = Literal["exchange", "queue", "binding"]
Status = Literal["create", "match", "conflict", "unchecked", "unknown"]
MARKERS: dict[Status, str] = {"create": "+", "match": "=", "conflict": "!", "unchecked": "~", "unknown": "?"}
CONFLICTS = ExitStatus.CONFLICT
MISSING = "missing"  # what a check found: MISSING, None (it exists), or the broker's refusal
PASSIVE = "passive: it must exist, and it does (checked, not declared: its properties are not compared)"
REFUSED = "RabbitMQ would refuse the service's declaration (406 PRECONDITION_FAILED)"
_UNLISTED = "bindings cannot be listed without the management API; the service binds it (no change if it exists)"
_INEQUIVALENT = re.compile(r"inequivalent arg '(?P<key>[^']*)' for .*: received (?P<new>.*) but current is (?P<old>.*)")
_TYPED_VALUE = re.compile(r"the value '(?P<value>.*)' of type '(?P<type>\w+)'", re.DOTALL)
_INTEGER_TYPES = frozenset({"byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One property where the broker and the config part (None: not set); a note when not a conflict."""

    property: str
    broker: Any
    config: Any
    reason: str
    is_conflict: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A binding as both sides name it; `arguments` is their canonical JSON, so that routes compare."""

    source: str
    destination: str
    destination_type: str
    routing_key: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One line of the plan: an exchange, a queue or a binding, and what the service would meet."""

    kind: Kind
    name: str
    status: Status
    note: str = ""
    differences: tuple[Difference, ...] = ()
    route: Route | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    service: str
    broker: str  # the AMQP connection, without its password
    management: str | None  # the management API, without its password; None: not used
    items: tuple[Item, ...]

    def counts(self) -> dict[Status, int]:
        return {status: sum(item.status == status for item in self.items) for status in MARKERS}

    def exit_status(self) -> ExitStatus:
        return CONFLICTS if any(item.status == "conflict" for item in self.items) else ExitStatus.OK


class Inspector(Protocol):
    """Finds one thing at a time on the broker; `routes` holds the bindings it listed (None: cannot)."""

    routes: set[Route] | None

    def exchange(self, exchange: Exchange) -> Item: ...

    def queue(self, queue: Queue) -> Item: ...

    def exchange_exists(self, name: str) -> bool: ...


def make_plan(
    service: LiveService,
    settings: ConnectionSettings,
    api: Management | None = None,
    transport: Transport | None = None,
) -> Plan:
    """The plan; raises BrokerError when the broker (or the API) cannot be reached or refuses us."""
    if transport is None:
        transport = transports.from_environment(os.environ)  # the broker the command line names
    session = _Session(transport, settings, f"{service.name} plan")
    try:
        session.connection()  # the service's own settings must work, whatever else is used
        if api is not None:
            api.check_access()
        items = _items(service, api.inspector() if api is not None else _OverAmqp(session))
    finally:
        session.close()
    described = api.describe() if api is not None else None
    return Plan(service=service.name, broker=settings.describe(), management=described, items=tuple(items))


def _items(service: LiveService, inspector: Inspector) -> list[Item]:
    items = [*map(inspector.exchange, service.exchanges), *map(inspector.queue, service.queues)]
    found = {(item.kind, item.name): item.status for item in items}
    external: dict[str, bool] = {}  # exchanges bound to but not declared: they must exist
    known = set()
    for queue in service.queues:
        for binding in queue.bindings:
            route = route_of(binding.exchange, queue.name, "queue", binding.routing_key, binding.arguments)
            known.add(route)
            source = found.get(("exchange", binding.exchange))
            if source is None and binding.exchange not in external:
                external[binding.exchange] = inspector.exchange_exists(binding.exchange)
            items.append(_binding(route, source, found[("queue", queue.name)], external, inspector.routes))
    for route in sorted((inspector.routes or set()) - known, key=lambda route: tuple(asdict(route).values())):
        items.append(Item(kind="binding", name=_route_name(route), status="unknown", route=route))
    return items


def _binding(
    route: Route, source: Status | None, queue: Status, external: Mapping[str, bool], listed: set[Route] | None
) -> Item:
    name = _route_name(route)
    if source is None and not external[route.source]:
        why = "the exchange does not exist and the config does not declare it: the service's bind would fail (404)"
        missing = Difference(property="exchange", broker=None, config=route.source, reason=why)
        return Item(kind="binding", name=name, status="conflict", differences=(missing,), route=route)
    if listed is None and "create" not in (source, queue):
        return Item(kind="binding", name=name, status="unchecked", note=_UNLISTED, route=route)
    status: Status = "match" if listed is not None and route in listed else "create"
    return Item(kind="binding", name=name, status=status, route=route)


class _Session:
    """The plan's AMQP connection, opened again if the broker closed it over a refusal (a 503)."""

    def __init__(self, transport: Transport, settings: ConnectionSettings, name: str) -> None:
        self._transport, self._settings, self._name = transport, settings, name
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None or not self._connection.is_open:
            self._connection = self._transport.connect(self._settings, name=self._name)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close(timeout=5.0)


class _OverAmqp:
    """The broker as its own judge: a passive declare, then the service's own declaration."""

    routes: set[Route] | None = None  # AMQP cannot list bindings

    def __init__(self, session: _Session) -> None:
        self._session = session

    def exchange(self, exchange: Exchange) -> Item:
        def declare(channel: Channel, passive: bool) -> None:
            channel.declare_exchange(replace(exchange, passive=passive))

        found = self._check(declare, redeclare=not exchange.passive)
        return judged("exchange", exchange.name, exchange.passive, found, declared_values(exchange))

    def queue(self, queue: Queue) -> Item:
        def declare(channel: Channel, passive: bool) -> None:
            channel.declare_queue(replace(queue, passive=passive))

        found = self._check(declare, redeclare=not queue.passive)
        return judged("queue", queue.name, queue.passive, found, declared_values(queue))

    def exchange_exists(self, name: str) -> bool:
        probe = Exchange(name=name, type="direct", durable=True, auto_delete=False, internal=False, passive=True,
                         arguments={})  # fmt: skip
        return self._check(lambda channel, _: channel.declare_exchange(probe), redeclare=False) != MISSING

    def _check(self, declare: Callable[[Channel, bool], None], *, redeclare: bool) -> BrokerError | str | None:
        channel = self._session.connection().channel()
        passive = True
        try:
            declare(channel, True)
            if redeclare:
                # At once, on the same channel: the window in which another client's deletion would
                # let this declaration create the entity is one round trip.
                passive = False
                declare(channel, False)
        except DeclarationRefused as refusal:
            return MISSING if refusal.reply_code == 404 and passive else refusal
        except QueueUnavailable as refusal:  # a classic queue whose cluster node is down
            return refusal
        except ConnectionLost as lost:
            if lost.reply_code is None:  # the connection is gone, not closed over this declaration
                raise
            return lost
        finally:
            channel.close()
        return None


def judged(kind: Kind, name: str, passive: bool, found: BrokerError | str | None, values: Mapping[str, Any]) -> Item:
    """The item for what a check found: MISSING, None (it exists, and a declaration passes), or a refusal."""
    if found == MISSING and passive:
        why = "passive: true only checks that it exists, and it does not: the service would stop (404)"
        return item_of(kind, name, [Difference(property="exists", broker=False, config=True, reason=why)])
    if found == MISSING:
        return Item(kind=kind, name=name, status="create")
    if isinstance(found, BrokerError):
        return item_of(kind, name, [_refused(found, values)])
    return Item(kind=kind, name=name, status="match", note=PASSIVE if passive else "")


def item_of(kind: Kind, name: str, differences: list[Difference]) -> Item:
    conflicting = any(difference.is_conflict for difference in differences)
    return Item(kind=kind, name=name, status="conflict" if conflicting else "match", differences=tuple(differences))


def _refused(refusal: BrokerError, values: Mapping[str, Any]) -> Difference:
    """The broker's refusal of the service's declaration, with the property a 406 names."""
    code, text = refusal.reply_code, refusal.reply_text or str(refusal)
    found = _INEQUIVALENT.search(text) if code == 406 else None
    if found is None:
        why = f"RabbitMQ refuses the service's declaration: {f'{code} ' if code else ''}{text}"
        return Difference(property="declaration", broker=None, config=None, reason=why)
    why = f"{REFUSED}; RabbitMQ names the first difference only"
    declared = values.get(found["key"])
    return Difference(property=found["key"], broker=_reported(found["old"], declared), config=declared, reason=why)


def _reported(text: str, declared: Any) -> Any:
    """A value as a 406 message writes it: none; the value 'x' of type 't' (when the other side is
    absent); or 'x', whose type it does not say, so an integer or boolean is read as such when the
    config's value is one (RabbitMQ would not have created the entity with one of another type)."""
    typed = _TYPED_VALUE.fullmatch(text)
    value = typed["value"] if typed else text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text
    kind = typed["type"] if typed else type(declared).__name__
    if kind in _INTEGER_TYPES | {"int"} and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    if kind == "bool" and value in ("true", "false"):
        return value == "true"
    return None if text == "none" else value


def declared_values(entity: Exchange | Queue) -> dict[str, Any]:
    """What the service declares, by the names RabbitMQ gives the properties and arguments."""
    if isinstance(entity, Exchange):
        fields = {"type": entity.type, "durable": entity.durable, "internal": entity.internal}
    else:  # RabbitMQ makes an exclusive queue transient, whatever durable says
        fields = {"durable": entity.durable and not entity.exclusive, "exclusive": entity.exclusive}
    return {**entity.arguments, **fields, "auto_delete": entity.auto_delete}


def route_of(source: str, destination: str, kind: str, key: str, arguments: Mapping[str, Any]) -> Route:
    canonical = json.dumps(jsonable(arguments), sort_keys=True, separators=(",", ":"))
    return Route(source=source, destination=destination, destination_type=kind, routing_key=key, arguments=canonical)


def _route_name(route: Route) -> str:
    arrow = "->" if route.destination_type == "queue" else f"-> {route.destination_type}"
    return f"{route.source} {arrow} {route.destination}"


def jsonable(value: Any) -> Any:
    """A JSON value: text for bytes, non-finite floats and anything else JSON cannot hold."""
    if value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    return [jsonable(item) for item in value] if isinstance(value, list | tuple) else str(value)


def shown(value: Any) -> str:
    """A value in a line of text: JSON, escaped; "not set" for None."""
    return "not set" if value is None else safe(json.dumps(jsonable(value), ensure_ascii=False))
