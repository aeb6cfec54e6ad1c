"""Connection settings: read once from the environment at start, never at import time.

Owns the meaning of RABBITMQ_URL (several hosts, ports, a percent-encoded vhost, heartbeat and
TLS options) and of the separate RABBITMQ_HOST/_PORT/_USER/_PASS/_VHOST/_HEARTBEAT variables,
with the original's guest:guest@localhost defaults. Also owns how settings are shown in logs:
never with the password. Knows nothing of pika.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote

from .errors import ConfigurationError

log = logging.getLogger("amqp-dispatcher.settings")

_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
_QUERY_OPTIONS = {
    "heartbeat": "seconds between heartbeats, 0 for none",
    "connection_timeout": "seconds to wait for a TCP and AMQP handshake",
    "cafile": "CA certificates to verify the broker with (amqps)",
    "certfile": "client certificate (amqps)",
    "keyfile": "client key (amqps)",
    "verify": "verify_peer (default) or verify_none (amqps)",
    "server_name_indication": "the host name to verify the certificate against (amqps)",
}
_SEPARATE = ("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS", "RABBITMQ_VHOST")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    verify: bool = True
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    server_hostname: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSettings:
    endpoints: tuple[Endpoint, ...]
    username: str
    password: str = field(repr=False)
    vhost: str
    heartbeat: int
    connection_timeout: float = 10.0
    tls: TlsSettings | None = None

    def describe(self) -> str:
        """The connection for logs: scheme, user, hosts and vhost, never the password."""
        scheme = "amqps" if self.tls else "amqp"
        hosts = ",".join(str(endpoint) for endpoint in self.endpoints)
        return f"{scheme}://{self.username}@{hosts}/{_quote_vhost(self.vhost)}"


def from_environment(environ: Mapping[str, str], *, default_heartbeat: int) -> ConnectionSettings:
    """The settings the environment describes; raises ConfigurationError, naming the variable."""
    url = environ.get("RABBITMQ_URL", "").strip()
    if url:
        ignored = [name for name in _SEPARATE if environ.get(name)]
        if ignored:
            log.warning(
                "RABBITMQ_URL is set, so %s %s ignored", ", ".join(ignored), "is" if len(ignored) == 1 else "are"
            )
        settings = parse_url(url, default_heartbeat=default_heartbeat)
    else:
        settings = _from_separate_variables(environ, default_heartbeat)
    heartbeat = environ.get("RABBITMQ_HEARTBEAT", "").strip()
    if heartbeat:
        settings = replace(settings, heartbeat=_heartbeat(heartbeat, "RABBITMQ_HEARTBEAT"))
    return settings


def parse_url(url: str, *, default_heartbeat: int) -> ConnectionSettings:
    """`amqp[s]://user:pass@host[:port][,host2[:port]]/vhost?heartbeat=N&...`."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in _DEFAULT_PORTS:
        raise ConfigurationError(
            "RABBITMQ_URL must start with amqp:// or amqps://, as in amqp://user:password@host:5672/vhost"
        )
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, password = ("guest", "guest")
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret)
    endpoints = tuple(_endpoint(item, _DEFAULT_PORTS[scheme]) for item in hostlist.split(","))
    options = _query(query)
    tls = _tls(options, scheme == "amqps")
    return ConnectionSettings(
        endpoints=endpoints,
        username=username,
        password=password,
        vhost=_vhost(path) if slash else "/",
        heartbeat=_heartbeat(options["heartbeat"], "heartbeat in RABBITMQ_URL")
        if "heartbeat" in options
        else default_heartbeat,
        connection_timeout=_seconds(options.get("connection_timeout", "10"), "connection_timeout in RABBITMQ_URL"),
        tls=tls,
    )


def _from_separate_variables(environ: Mapping[str, str], default_heartbeat: int) -> ConnectionSettings:
    port = _port(environ.get("RABBITMQ_PORT", "").strip() or "5672", "RABBITMQ_PORT")
    hosts = environ.get("RABBITMQ_HOST", "").strip() or "localhost"
    return ConnectionSettings(
        endpoints=tuple(Endpoint(host.strip(), port) for host in hosts.split(",") if host.strip()),
        username=environ.get("RABBITMQ_USER") or "guest",
        password=environ.get("RABBITMQ_PASS") or "guest",
        vhost=environ.get("RABBITMQ_VHOST") or "/",
        heartbeat=default_heartbeat,
    )


def _endpoint(text: str, default_port: int) -> Endpoint:
    text = text.strip()
    if not text:
        raise ConfigurationError("RABBITMQ_URL names an empty host; separate hosts with commas: host1:5672,host2:5672")
    if text.startswith("["):  # an IPv6 literal, [::1]:5672
        host, _, after = text[1:].partition("]")
        port_text = after.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    port = _port(port_text, f"the port of {unquote(host)} in RABBITMQ_URL") if port_text else default_port
    return Endpoint(unquote(host), port)


def _vhost(path: str) -> str:
    if not path:
        return "/"
    if "/" in path:
        raise ConfigurationError(
            f"RABBITMQ_URL: the vhost {path!r} contains '/'; percent-encode it, as in /{_quote_vhost(unquote(path))}"
        )
    return unquote(path)


def _query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigurationError(f"RABBITMQ_URL: cannot read the query {query!r}") from exc
    unknown = sorted({name for name, _ in pairs} - set(_QUERY_OPTIONS))
    if unknown:
        known = "; ".join(f"{name} ({meaning})" for name, meaning in _QUERY_OPTIONS.items())
        raise ConfigurationError(f"RABBITMQ_URL: unknown option {', '.join(unknown)}; the options are: {known}")
    return dict(pairs)


def _tls(options: dict[str, str], is_tls: bool) -> TlsSettings | None:
    tls_options = {"cafile", "certfile", "keyfile", "verify", "server_name_indication"} & set(options)
    if not is_tls:
        if tls_options:
            raise ConfigurationError(f"RABBITMQ_URL: {', '.join(sorted(tls_options))} need an amqps:// URL")
        return None
    verify = options.get("verify", "verify_peer")
    if verify not in ("verify_peer", "verify_none"):
        raise ConfigurationError("RABBITMQ_URL: verify must be verify_peer or verify_none")
    if "keyfile" in options and "certfile" not in options:
        raise ConfigurationError("RABBITMQ_URL: keyfile needs certfile")
    return TlsSettings(
        verify=verify == "verify_peer",
        cafile=options.get("cafile"),
        certfile=options.get("certfile"),
        keyfile=options.get("keyfile"),
        server_hostname=options.get("server_name_indication"),
    )


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigurationError(f"{what}: {text!r} is not a port number (1 to 65535)")
    return int(text)


def _heartbeat(text: str, what: str) -> int:
    if not text.strip().isdigit() or int(text) > 65535:
        raise ConfigurationError(f"{what}: {text!r} is not a number of seconds from 0 (off) to 65535")
    return int(text)


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigurationError(f"{what}: {text!r} is not a number of seconds above 0")
    return value


def _quote_vhost(vhost: str) -> str:
    return quote(vhost, safe="")
