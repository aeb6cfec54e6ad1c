"""The RabbitMQ management API, read with GET only, and what it shows judged by RabbitMQ's rules.

Owns the HTTP side of `plan --management-url` (urllib: the runtime depends on no HTTP client):
the URL and its credentials (the URL's own, or else the AMQP settings'; never shown), TLS
verified by default (the system's CA store, plus an amqps:// RABBITMQ_URL's cafile), no redirect
followed (it would carry the credentials elsewhere), failures as our errors (BrokerUnreachable,
AccessRefused, HandshakeRefused; a bad URL is a ConfigurationError). And RabbitMQ 3.10's rules,
read from its code, by which plan.Inspector judges what the API shows (over AMQP the broker
applies them itself): which arguments a redeclaration compares for each queue type, and how
(rabbit_misc:assert_args_equivalence: numbers of one class by value, so a short equals a long,
but an integer never equals a float), and which of a policy and an argument a queue uses.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

from .errors import AccessRefused, BrokerError, BrokerUnreachable, ConfigurationError, HandshakeRefused
from .plan import MISSING, REFUSED, Difference, Item, Route, declared_values, item_of, judged, route_of, shown
from .settings import ConnectionSettings
from .spec import Exchange, Queue

CLASSIC, QUORUM, STREAM = "classic", "quorum", "stream"
# What a redeclaration compares: rabbit_queue_type:arguments(queue_arguments, Type) of the queue
# that exists (durable and auto_delete besides), and rabbit_exchange:assert_args_equivalence.
QUEUE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    CLASSIC: ("x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-length",
              "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode", "x-queue-version",
              "x-single-active-consumer", "x-queue-type", "x-queue-master-locator"),
    QUORUM: ("x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-expires",
             "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes", "x-overflow",
             "x-single-active-consumer", "x-queue-type", "x-quorum-initial-group-size", "x-delivery-limit",
             "x-message-ttl", "x-queue-leader-locator"),
    STREAM: ("x-max-length-bytes", "x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes",
             "x-initial-cluster-size", "x-queue-leader-locator"),
}  # fmt: skip
EXCHANGE_ARGUMENTS = ("alternate-exchange",)

# Which value a queue uses when both a policy (user and operator policies merged, as
# effective_policy_definition shows) and its x-<key> argument set one: the lower, the argument's
# or the policy's (rabbit_amqqueue_process, rabbit_quorum_queue, rabbit_stream_queue).
LOWER, ARGUMENT, POLICY = "lower", "argument", "policy"
POLICY_PRECEDENCE: dict[str, dict[str, str]] = {
    CLASSIC: {"expires": LOWER, "message-ttl": LOWER, "max-length": LOWER, "max-length-bytes": LOWER,
              "dead-letter-exchange": ARGUMENT, "dead-letter-routing-key": ARGUMENT, "overflow": ARGUMENT,
              "queue-mode": ARGUMENT, "queue-version": ARGUMENT},
    QUORUM: {"max-length": LOWER, "max-length-bytes": LOWER, "max-in-memory-length": LOWER,
             "max-in-memory-bytes": LOWER, "delivery-limit": LOWER, "message-ttl": LOWER, "overflow": POLICY,
             "expires": POLICY, "dead-letter-exchange": ARGUMENT, "dead-letter-routing-key": ARGUMENT,
             "dead-letter-strategy": ARGUMENT},
    STREAM: {"max-length-bytes": POLICY, "max-age": POLICY, "stream-max-segment-size-bytes": POLICY},
}  # fmt: skip

_ABSENT: Any = object()
_QUEUE_COLUMNS = "name,durable,auto_delete,exclusive,arguments,type,policy,operator_policy,effective_policy_definition"


def equivalent(key: str, existing: Any = _ABSENT, declared: Any = _ABSENT) -> bool:
    """Whether a redeclaration with `declared` for argument `key` passes where `existing` is set
    (either may be left out: absent). Same type class and equal (`==`), or the very same term."""
    if existing is _ABSENT or declared is _ABSENT:
        other = declared if existing is _ABSENT else existing
        # rabbit_misc:assert_field_equivalence lets an absent x-queue-type equal "classic".
        return other is _ABSENT or (key == "x-queue-type" and type(other) is str and other == "classic")
    old, new = _typed(existing), _typed(declared)
    if old == new:
        return True
    # Otherwise the raw terms must be identical: AMQP text and bytes are both Erlang binaries.
    return {old[0], new[0]} == {"longstr", "binary"} and old[1] == new[1]


def differing(keys: tuple[str, ...], existing: Mapping[str, Any], declared: Mapping[str, Any]) -> list[str]:
    """The keys, in RabbitMQ's order, whose values would make a redeclaration fail."""
    return [key for key in keys if not equivalent(key, existing.get(key, _ABSENT), declared.get(key, _ABSENT))]


def queue_type(data: Mapping[str, Any]) -> str:
    """The type of a queue the API shows."""
    shown = data.get("type") or (data.get("arguments") or {}).get("x-queue-type") or CLASSIC
    return str(shown) if shown in QUEUE_ARGUMENTS else CLASSIC


def resolved(precedence: str, policy_value: Any, argument_value: Any) -> Any:
    """The value a queue uses when a policy and its argument both set one."""
    if precedence == ARGUMENT:
        return argument_value
    if precedence == LOWER and all(_typed(value)[0] in ("int", "float") for value in (policy_value, argument_value)):
        return min(policy_value, argument_value)
    return policy_value  # POLICY, or Erlang's term order, where a number sorts below anything else


def _typed(value: Any) -> tuple[str, Any]:
    """A value as RabbitMQ's comparison sees it: its type class and a value to compare with `==`.
    Inside arrays and tables the exact type counts; integers are taken as one type there, since
    neither the API's JSON nor a config tells their widths apart."""
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int):
        return "int", value
    if isinstance(value, float):
        return "float", value
    if isinstance(value, str):
        return "longstr", value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return "binary", value
    if value is None:
        return "void", None
    if isinstance(value, Mapping):
        return "table", tuple((str(name), _typed(item)) for name, item in value.items())
    if isinstance(value, list | tuple):
        return "array", tuple(_typed(item) for item in value)
    return type(value).__name__, repr(value)


class Management:
    """The management API of one vhost, read-only."""

    def __init__(self, base: str, *, username: str, password: str, vhost: str, timeout: float, cafile: str | None):
        self._base, self._vhost, self._timeout = base.rstrip("/"), quote(vhost, safe=""), timeout
        self._username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        context = ssl.create_default_context()  # the system's CA store, verified, and the cafile besides
        if cafile:
            context.load_verify_locations(cafile)
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))

    @classmethod
    def from_url(cls, url: str, settings: ConnectionSettings) -> Management:
        """The API at `url` (http[s]://[user:password@]host[:port][/prefix]), with the URL's own
        credentials or else those of the AMQP settings; ConfigurationError for a URL it cannot use."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port  # reads it: a ValueError if it is no port
        except ValueError:
            raise ConfigurationError(_URL_HINT.format(problem="cannot be read")) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(_URL_HINT.format(problem="must start with http:// or https:// and name a host"))
        if parts.query or parts.fragment:
            raise ConfigurationError(_URL_HINT.format(problem="takes no query (?) or fragment (#)"))
        if any(char.isspace() or not char.isprintable() for char in url.strip()):
            raise ConfigurationError(_URL_HINT.format(problem="holds a space or a control character"))
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        base = f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"
        own = parts.username is not None
        return cls(
            base,
            username=unquote(parts.username or "") if own else settings.username,
            password=unquote(parts.password or "") if own else settings.password,
            vhost=settings.vhost,
            timeout=settings.connection_timeout,
            cafile=settings.tls.cafile if settings.tls else None,
        )

    def inspector(self) -> ApiInspector:
        return ApiInspector(self)

    def describe(self) -> str:
        """The API for output: scheme, user, host and prefix, never the password."""
        scheme, _, rest = self._base.partition("://")
        return f"{scheme}://{quote(self._username, safe='')}@{rest}"

    def check_access(self) -> None:
        """Raises BrokerUnreachable, AccessRefused or HandshakeRefused unless the API answers us."""
        self._get("/api/whoami", missing_ok=False)

    def queue(self, name: str) -> dict[str, Any] | None:
        return self._object(f"/api/queues/{self._vhost}/{quote(name, safe='')}?columns={_QUEUE_COLUMNS}")

    def exchange(self, name: str) -> dict[str, Any] | None:
        return self._object(f"/api/exchanges/{self._vhost}/{quote(name, safe='')}")

    def queue_bindings(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/queues/{self._vhost}/{quote(name, safe='')}/bindings")

    def exchange_bindings(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/exchanges/{self._vhost}/{quote(name, safe='')}/bindings/source")

    def _object(self, path: str) -> dict[str, Any] | None:
        found = self._get(path)
        return found if found is None or isinstance(found, dict) else self._unexpected(path)

    def _list(self, path: str) -> list[dict[str, Any]]:
        found = self._get(path) or []
        return (
            found
            if isinstance(found, list) and all(isinstance(each, dict) for each in found)
            else self._unexpected(path)
        )

    def _unexpected(self, path: str) -> NoReturn:
        raise BrokerError(f"the management API at {self.describe()} answered {path.split('?')[0]} unexpectedly")

    def _get(self, path: str, *, missing_ok: bool = True) -> Any:
        """The JSON answer to GET `path`; None for 404 (a queue or exchange that does not exist)."""
        where = f"the management API at {self.describe()}"
        request = urllib.request.Request(self._base + path, headers=self._headers)
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404 and missing_ok:
                return None
            raise _http_error(error.code, where) from None
        except http.client.HTTPException as error:  # something answered, not in HTTP (the AMQP port?)
            raise BrokerUnreachable(
                f"{where} did not answer in HTTP ({type(error).__name__}): is it the management plugin's port, "
                "15672 (or 15671 with TLS)?"
            ) from None
        except (urllib.error.URLError, OSError) as error:  # urllib wraps what the socket and TLS raise
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise HandshakeRefused(
                    f"{where}: its TLS certificate failed verification: {reason.verify_message}"
                ) from None
            if isinstance(reason, ssl.SSLError):
                raise HandshakeRefused(
                    f"{where}: the TLS handshake failed ({reason.reason}); is it an https port?"
                ) from None
            raise BrokerUnreachable(f"cannot reach {where}: {getattr(reason, 'strerror', None) or reason}") from None
        try:
            return json.loads(body)
        except ValueError:
            self._unexpected(path)


_URL_HINT = (
    "--management-url {problem}; write it as http://host:15672 or https://host:15671 (the management "
    "plugin's listener; a path prefix if it has one), with user:password@ before the host only if they "
    "differ from RABBITMQ_URL's"
)


def _http_error(code: int, where: str) -> BrokerError:
    if code in (401, 403):
        return AccessRefused(f"{where} refused the credentials ({code}): {_WHO}")
    if 300 <= code < 400:
        return BrokerUnreachable(f"{where} redirects ({code}); give the URL it redirects to (none is followed)")
    return BrokerUnreachable(f"{where} answered {code}; is the management plugin enabled there?")


_WHO = "the user needs the management (or monitoring) tag and access to the vhost; put others in the URL if need be"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would send the Authorization header on to wherever they point."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ApiInspector:
    """plan.Inspector over the API: judges what it shows by RabbitMQ's rules, and lists bindings
    to the service's queues and from its exchanges (not those of the default exchange)."""

    def __init__(self, api: Management) -> None:
        self._api = api
        self.routes: set[Route] | None = set()

    def exchange(self, exchange: Exchange) -> Item:
        data = self._api.exchange(exchange.name)
        if data is None or exchange.passive:
            return judged("exchange", exchange.name, exchange.passive, MISSING if data is None else None, {})
        self._listed(self._api.exchange_bindings(exchange.name))
        differences = _fields(data, declared_values(exchange), ("type", "durable", "auto_delete", "internal"))
        differences += _arguments(EXCHANGE_ARGUMENTS, data, exchange.arguments)
        if data.get("policy") and "alternate-exchange" in exchange.arguments:
            why = f"policy {data['policy']!r} applies; the config's alternate-exchange argument wins over a policy's"
            differences.append(Difference(property="policy", broker=data["policy"], config=None, reason=why,
                                          is_conflict=False))  # fmt: skip
        return item_of("exchange", exchange.name, differences)

    def queue(self, queue: Queue) -> Item:
        data = self._api.queue(queue.name)
        if data is None or (queue.passive and not data.get("exclusive")):
            return judged("queue", queue.name, queue.passive, MISSING if data is None else None, {})
        differences = []
        if data.get("exclusive") or queue.exclusive:
            why = "405 RESOURCE_LOCKED: an exclusive queue belongs to the connection that declared it"
            differences.append(Difference(property="exclusive", broker=bool(data.get("exclusive")),
                                          config=queue.exclusive, reason=why))  # fmt: skip
        if not queue.passive:
            self._listed(self._api.queue_bindings(queue.name))
            kind = queue_type(data)
            differences += _fields(data, declared_values(queue), ("durable", "auto_delete"))
            differences += _arguments(QUEUE_ARGUMENTS[kind], data, queue.arguments)
            differences += _policies(POLICY_PRECEDENCE[kind], data, queue.arguments)
        return item_of("queue", queue.name, differences)

    def exchange_exists(self, name: str) -> bool:
        return self._api.exchange(name) is not None

    def _listed(self, bindings: list[dict[str, Any]]) -> None:
        assert self.routes is not None
        for binding in bindings:
            if binding.get("source"):  # the default exchange's, which every queue has
                fields = ("source", "destination", "destination_type", "routing_key")
                source, destination, kind, key = (str(binding.get(field, "")) for field in fields)
                self.routes.add(route_of(source, destination, kind, key, binding.get("arguments") or {}))


def _fields(data: Mapping[str, Any], declared: Mapping[str, Any], names: tuple[str, ...]) -> list[Difference]:
    return _refused(data, declared, [name for name in names if data.get(name) != declared[name]])


def _arguments(keys: tuple[str, ...], data: Mapping[str, Any], declared: Mapping[str, Any]) -> list[Difference]:
    existing = data.get("arguments") or {}
    return _refused(existing, declared, differing(keys, existing, declared))


def _refused(existing: Mapping[str, Any], declared: Mapping[str, Any], names: list[str]) -> list[Difference]:
    return [Difference(property=name, broker=existing.get(name), config=declared.get(name), reason=REFUSED)
            for name in names]  # fmt: skip


def _policies(precedences: Mapping[str, str], data: Mapping[str, Any], declared: Mapping[str, Any]) -> list[Difference]:
    """What the queue's policies (user and operator, merged as effective_policy_definition) do to
    the values the config sets: a conflict where the queue uses the policy's value, else a note."""
    named = [f"{what} {data[field]!r}" for what, field in (("policy", "policy"), ("operator policy", "operator_policy"))
             if data.get(field)]  # fmt: skip
    found = []
    for key, value in sorted((data.get("effective_policy_definition") or {}).items()):
        argument, precedence = f"x-{key}", precedences.get(key)
        if precedence is None or argument not in declared or equivalent(argument, value, declared[argument]):
            continue
        sets = f"the effective policy ({' and '.join(named) or 'unnamed'}) sets {key} {shown(value)}"
        overrides = not equivalent(argument, resolved(precedence, value, declared[argument]), declared[argument])
        rule = "the lower value wins" if precedence == LOWER else f"the {precedence} wins"
        why = (
            f"{sets}, which the queue uses instead of the config's {argument} ({rule})"
            if overrides
            else (f"{sets}; the config's {argument} wins over it ({rule}), so the policy's value has no effect here")
        )
        found.append(Difference(property=key, broker=value, config=declared[argument], reason=why,
                                is_conflict=overrides))  # fmt: skip
    return found
