"""Connection settings: read once from the environment at start, never at import time.

Owns the meaning of RABBITMQ_URL (several hosts, ports, a percent-encoded vhost, heartbeat and
TLS options) and of the separate RABBITMQ_HOST/_PORT/_USER/_PASS/_VHOST/_HEARTBEAT variables,
with the original's guest:guest@localhost defaults. Every problem is a ConfigurationError of
one line that names the variable, and none of them, nor any log line, ever shows the password,
whatever shape the URL has. The TLS context itself is tls.py's. Knows nothing of pika.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote

from . import tls
from .errors import ConfigurationError
from .logs import SETTINGS, get_logger
from .tls import TlsSettings

log = get_logger(SETTINGS)

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
_TLS_OPTIONS = frozenset({"cafile", "certfile", "keyfile", "verify", "server_name_indication"})
_SEPARATE = ("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS", "RABBITMQ_VHOST", "RABBITMQ_HOSTS")
# Only ASCII digits: str.isdigit() also accepts "²" and "١", which int() then refuses or misreads.
_DIGITS = re.compile(r"[0-9]+")
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_SHORT_STRING = 255  # AMQP short strings, such as the vhost, are at most 255 bytes
_ENCODING_HINT = "percent-encode / ? # @ and : in the user name and password (%2F %3F %23 %40 %3A)"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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
        return f"{scheme}://{quote(self.username, safe='')}@{hosts}/{_quote_vhost(self.vhost)}"


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
    if settings.tls is not None:
        settings = replace(settings, tls=replace(settings.tls, context=tls.build_context(settings.tls)))
    return settings


def parse_url(url: str, *, default_heartbeat: int) -> ConnectionSettings:
    """`amqp[s]://user:pass@host[:port][,host2[:port]]/vhost?heartbeat=N&...`.

    No message of this function quotes the part of the URL where the password is, and every
    message is masked once more against whatever in the URL could be a password.
    """
    try:
        return _parse_url(url, default_heartbeat)
    except ConfigurationError as exc:
        # `from None`: the cause (a ValueError of urllib, say) could quote the URL.
        raise ConfigurationError(_masked(str(exc), url)) from None


def _parse_url(url: str, default_heartbeat: int) -> ConnectionSettings:
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in _DEFAULT_PORTS:
        raise ConfigurationError(
            "RABBITMQ_URL must start with amqp:// or amqps://, as in amqp://user:password@host:5672/vhost"
        )
    authority, after = _split_authority(rest)
    userinfo, at, hostlist = authority.rpartition("@")
    username, password = "guest", "guest"
    if at:
        user, _, secret = userinfo.partition(":")
        username = _text(_decoded(user, "the user name in RABBITMQ_URL"), "the user name in RABBITMQ_URL")
        password = _text(_decoded(secret, "the password in RABBITMQ_URL"), "the password in RABBITMQ_URL")
    path, _, query = after.partition("?")
    options = _query(query)
    return ConnectionSettings(
        endpoints=_endpoints(hostlist, _DEFAULT_PORTS[scheme]),
        username=username,
        password=password,
        vhost=_vhost(path[1:]) if path.startswith("/") else "/",
        heartbeat=_heartbeat(options["heartbeat"], "heartbeat in RABBITMQ_URL")
        if "heartbeat" in options
        else default_heartbeat,
        connection_timeout=_seconds(options.get("connection_timeout", "10"), "connection_timeout in RABBITMQ_URL"),
        tls=_tls(options, scheme == "amqps"),
    )


def _split_authority(rest: str) -> tuple[str, str]:
    """The user, password and hosts, and what follows them (path and query).

    The authority ends at the first '/', '?' or '#'. An '@' after that point means a password
    (or user name) holds one of those characters unencoded, so the URL cannot be read, and the
    message must not quote any part of it.
    """
    end = min((index for index in (rest.find(mark) for mark in "/?#") if index >= 0), default=len(rest))
    authority, after = rest[:end], rest[end:]
    if "@" in after:
        raise ConfigurationError(
            f"RABBITMQ_URL cannot be read: an '@' follows the host part, so the user name or password holds an "
            f"unencoded '/', '?' or '#'; {_ENCODING_HINT} (and write an '@' in the vhost as %40)"
        )
    if "#" in after:
        raise ConfigurationError("RABBITMQ_URL: '#' must be percent-encoded as %23")
    return authority, after


def _from_separate_variables(environ: Mapping[str, str], default_heartbeat: int) -> ConnectionSettings:
    port = _port(environ.get("RABBITMQ_PORT", "").strip() or "5672", "RABBITMQ_PORT")
    hosts = environ.get("RABBITMQ_HOST", "").strip()
    legacy = environ.get("RABBITMQ_HOSTS", "").strip()
    if legacy and not hosts:
        log.warning("RABBITMQ_HOSTS is the name of amqp-dispatcher 0.0.x; it is read, but write RABBITMQ_HOST=h1,h2")
        hosts = legacy
    names = [host.strip() for host in (hosts or "localhost").split(",")]
    if not all(names):
        raise ConfigurationError("RABBITMQ_HOST names an empty host; separate hosts with commas: host1,host2")
    return ConnectionSettings(
        endpoints=tuple(Endpoint(_host(name, "RABBITMQ_HOST"), port) for name in names),
        username=_text(environ.get("RABBITMQ_USER") or "guest", "RABBITMQ_USER"),
        password=_text(environ.get("RABBITMQ_PASS") or "guest", "RABBITMQ_PASS"),
        vhost=_vhost_name(environ.get("RABBITMQ_VHOST") or "/", "RABBITMQ_VHOST"),
        heartbeat=default_heartbeat,
    )


def _endpoints(hostlist: str, default_port: int) -> tuple[Endpoint, ...]:
    """Hosts with their ports. A port on the last host alone applies to every host, as in the
    original amqp-dispatcher; any other mix of hosts with and without ports is refused."""
    parsed = [_endpoint(item) for item in hostlist.split(",")]
    ports = [port for _, port in parsed]
    if len(parsed) > 1 and all(port is None for port in ports[:-1]) and ports[-1] is not None:
        ports = [ports[-1]] * len(parsed)
    elif any(port is None for port in ports) and any(port is not None for port in ports):
        raise ConfigurationError(
            "RABBITMQ_URL: some hosts have a port and others do not; write a port on every host "
            "(h1:5672,h2:5673), or on the last host only to use it for all of them"
        )
    return tuple(
        Endpoint(host, default_port if port is None else port) for (host, _), port in zip(parsed, ports, strict=True)
    )


def _endpoint(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if not text:
        raise ConfigurationError("RABBITMQ_URL names an empty host; separate hosts with commas: host1:5672,host2:5672")
    if text.startswith("["):  # an IPv6 literal, [::1]:5672
        host, _, after = text[1:].partition("]")
        port_text = after.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    host = _host(_decoded(host, "a host name in RABBITMQ_URL"), "RABBITMQ_URL")
    # The port's text is never quoted: in a URL whose password holds an unencoded character,
    # what looks like a port can be a piece of the password.
    return host, _port(port_text, f"the port of host {host!r} in RABBITMQ_URL") if port_text else None


def _host(name: str, variable: str) -> str:
    if not name or any(char.isspace() or not char.isprintable() or char in "/?#@" for char in name):
        hint = "; a URL goes in RABBITMQ_URL" if variable == "RABBITMQ_HOST" and "/" in name else ""
        raise ConfigurationError(f"{variable}: {_shown(name)} is not a host name{hint}")
    _, colon, port = name.partition(":")
    if variable == "RABBITMQ_HOST" and colon and ":" not in port and _DIGITS.fullmatch(port):
        raise ConfigurationError(f"RABBITMQ_HOST: {_shown(name)} holds a port; write RABBITMQ_PORT={port} instead")
    return name


def _vhost(path: str) -> str:
    if not path:
        return "/"
    if "/" in path:
        raise ConfigurationError("RABBITMQ_URL: the vhost contains '/'; percent-encode each '/' in it as %2F")
    return _vhost_name(_decoded(path, "the vhost in RABBITMQ_URL"), "the vhost in RABBITMQ_URL")


def _vhost_name(name: str, what: str) -> str:
    size = len(_text(name, what).encode("utf-8"))
    if size > _MAX_SHORT_STRING:
        raise ConfigurationError(f"{what} is {size} bytes long; AMQP allows at most {_MAX_SHORT_STRING}")
    return name


def _decoded(text: str, what: str) -> str:
    """Percent-decoded text, which must be UTF-8."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} is not UTF-8 once percent-decoded") from None


def _text(value: str, what: str) -> str:
    """Text the AMQP handshake can carry: the environment hands undecodable bytes in as surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} is not valid UTF-8 text") from None
    return value


def _query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query), errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(
            "RABBITMQ_URL: cannot read the options after '?'; write them as name=value&name=value"
        ) from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(_QUERY_OPTIONS))
    if unknown:
        known = "; ".join(f"{name} ({meaning})" for name, meaning in _QUERY_OPTIONS.items())
        shown = ", ".join(_shown(name) for name in unknown)
        raise ConfigurationError(f"RABBITMQ_URL: unknown option {shown}; the options are: {known}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigurationError(f"RABBITMQ_URL: {', '.join(repeated)} is given more than once; give it once")
    return dict(pairs)


def _tls(options: dict[str, str], is_tls: bool) -> TlsSettings | None:
    tls_options = _TLS_OPTIONS & set(options)
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
        cafile=options.get("cafile") or None,
        certfile=options.get("certfile") or None,
        keyfile=options.get("keyfile") or None,
        server_hostname=options.get("server_name_indication") or None,
    )


def _port(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text) or not 0 < int(text) < 65536:
        raise ConfigurationError(f"{what} is not a port number from 1 to 65535")
    return int(text)


def _heartbeat(text: str, what: str) -> int:
    text = text.strip()
    if not _DIGITS.fullmatch(text) or int(text) > 65535:
        hint = (
            "; the original amqp-dispatcher read an empty heartbeat as the broker's value: remove the option "
            "to use the config's heartbeat, or give one"
            if text in ("", "None")
            else ""
        )
        raise ConfigurationError(f"{what}: {_shown(text)} is not a number of seconds from 0 (off) to 65535{hint}")
    return int(text)


def _seconds(text: str, what: str) -> float:
    value = float(text) if _SECONDS.fullmatch(text) else -1.0
    if not 0 < value <= 3600:
        raise ConfigurationError(f"{what}: {_shown(text)} is not a number of seconds above 0, at most 3600")
    return value


def _shown(text: str) -> str:
    """A value in a message: quoted with its unprintable characters escaped, and never long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _quote_vhost(vhost: str) -> str:
    return quote(vhost, safe="")


def _masked(message: str, url: str) -> str:
    """The message, or, if anything in it could be the URL's password, a message without it.

    The messages above quote no part of the URL where a password can be; this is the second
    line of defence. Whatever lies between the user name's ':' and any '@' may be a password,
    and so may each piece of it between reserved characters. If any of them appears in the
    message, the whole message gives way to a general one: masking the pieces alone would tell
    which words of ours the password holds. (Pieces shorter than three characters are not
    looked for: they would match nearly every message, and no message quotes them.)
    """
    rest = url.partition("://")[2]
    candidates: set[str] = set()
    for at in (index for index, char in enumerate(rest) if char == "@"):
        secret = rest[:at].partition(":")[2]
        for text in (secret, unquote(secret)):
            candidates.update(piece for piece in [text, *re.split(r"[/?#@:&=,]", text)] if len(piece) >= 3)
    if any(candidate in message for candidate in candidates):
        return (
            "RABBITMQ_URL cannot be read; write it as amqp[s]://user:password@host:port/vhost?option=value, "
            f"and {_ENCODING_HINT}"
        )
    return message
