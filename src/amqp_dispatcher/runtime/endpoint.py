"""The HTTP endpoint: GET /metrics, /livez, /readyz and /info, on gevent's own WSGI server.

Owns listening (the `http:` setting, and DISPATCHER_HTTP_PORT and DISPATCHER_HTTP_HOST, which
override it per deployment), the routes, and their answers: 404 for an unknown path, 405 for
any method but GET and HEAD. It is served on the gevent hub, like everything else in the
service: /livez answers while the hub is responsive, and while a handler blocks the hub it gets
no answer until the block ends, which a probe with a timeout (one second) counts as a failure.
That is the point of the check; an answer from outside the hub would need a second server on a
native thread, and would report a hub it is not. What readiness, information and metrics say
is given by the runner; this module only serves them. A port already in use is a
ConfigurationError at start (exit 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gevent.pywsgi

from .errors import ConfigurationError
from .logs import ENDPOINT, get_logger, safe
from .spec import Http

log = get_logger(ENDPOINT)

_HOST = re.compile(r"[A-Za-z0-9.:_-]+")
_DIGITS = re.compile(r"[0-9]+")
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_CONCURRENT_REQUESTS = 32  # more wait for one: probes and scrapers are few, and must not crowd the hub

StartResponse = Callable[[str, list[tuple[str, str]]], object]
Answer = tuple[str, str, bytes]  # status, content type, body


def listen_address(environ: Mapping[str, str], configured: Http | None) -> Http | None:
    """Where to listen: the config's `http:`, with DISPATCHER_HTTP_PORT and _HOST over it."""
    port_text = environ.get("DISPATCHER_HTTP_PORT", "").strip()
    host = environ.get("DISPATCHER_HTTP_HOST", "").strip()
    if port_text.lower() == "off":
        return None
    if port_text:
        if not _DIGITS.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            raise ConfigurationError(
                f"DISPATCHER_HTTP_PORT={safe(port_text)!r}: expected a TCP port from 1 to 65535, or off"
            )
        configured = Http(port=int(port_text), host=configured.host if configured else "0.0.0.0")
    if host:
        if not _HOST.fullmatch(host):
            raise ConfigurationError(
                f"DISPATCHER_HTTP_HOST={safe(host)!r}: expected an IP address or a host name, such as 0.0.0.0"
            )
        if configured is None:
            raise ConfigurationError(
                "DISPATCHER_HTTP_HOST is set, but no port is: set DISPATCHER_HTTP_PORT, or http: in the config"
            )
        configured = Http(port=configured.port, host=host)
    return configured


class HttpEndpoint:
    """The endpoint's server. `ready` says what is not ready (nothing: ready), `live` what is not
    alive (nothing, in one process: that it answers is the check); `info` and `metrics` give the
    other bodies. Lifecycle: start (binds, or raises ConfigurationError), stop."""

    def __init__(
        self,
        address: Http,
        *,
        ready: Callable[[], list[str]],
        info: Callable[[], Mapping[str, Any]],
        metrics: Callable[[], tuple[bytes, str]],
        live: Callable[[], list[str]] = list,
    ) -> None:
        self.address = address
        self._routes: dict[str, Callable[[], Answer]] = {
            "/livez": lambda: _liveness(live()),
            "/readyz": lambda: _readiness(ready()),
            "/info": lambda: ("200 OK", _JSON, _json(info())),
            "/metrics": lambda: _metrics(metrics),
        }
        self._server: gevent.pywsgi.WSGIServer | None = None

    def __repr__(self) -> str:
        return f"<HttpEndpoint {self.address.host}:{self.address.port} {'serving' if self._server else 'stopped'}>"

    def start(self) -> None:
        server = gevent.pywsgi.WSGIServer(
            (self.address.host, self.address.port), self._serve, log=None, spawn=_CONCURRENT_REQUESTS
        )
        try:
            server.start()
        except OSError as error:
            raise ConfigurationError(
                f"cannot serve the HTTP endpoint on {self.address.host}:{self.address.port}: "
                f"{error.strerror or error}; choose another port (http: port in the config, or "
                "DISPATCHER_HTTP_PORT), or stop what listens there"
            ) from error
        self._server = server
        log.info("serving /metrics, /livez, /readyz and /info on %s:%d", self.address.host, server.server_port)

    @property
    def port(self) -> int:
        """The port it listens on (the configured one; the kernel's choice for port 0, in tests)."""
        port = self._server.server_port if self._server else None
        return port if port is not None else self.address.port

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(timeout=1)

    @staticmethod
    def _answer(route: Callable[[], Answer], path: str) -> Answer:
        try:
            return route()
        except Exception:  # last resort: a bug in an answer must not reach gevent's own error output
            log.exception("answering %s failed", path)
            return "500 Internal Server Error", _TEXT, b"internal error; see the service's log\n"

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = self._routes.get(environ.get("PATH_INFO", ""))
        if method not in ("GET", "HEAD"):
            status, kind, body = "405 Method Not Allowed", _TEXT, b"only GET and HEAD\n"
            headers = [("Allow", "GET, HEAD")]
        elif route is None:
            status, kind, body = "404 Not Found", _TEXT, b"not found: try /metrics, /livez, /readyz or /info\n"
            headers = []
        else:
            status, kind, body = self._answer(route, environ.get("PATH_INFO", ""))
            headers = []
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body))), *headers])
        return [b""] if method == "HEAD" else [body]


def _metrics(metrics: Callable[[], tuple[bytes, str]]) -> Answer:
    body, kind = metrics()
    return "200 OK", kind, body


def _liveness(problems: list[str]) -> Answer:
    if problems:
        return "503 Service Unavailable", _TEXT, "".join(f"{problem}\n" for problem in problems).encode("utf-8")
    return "200 OK", _TEXT, b"ok\n"


def _readiness(problems: list[str]) -> Answer:
    if problems:
        return "503 Service Unavailable", _JSON, _json({"ready": False, "not_ready": problems})
    return "200 OK", _JSON, _json({"ready": True})


def _json(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=True, sort_keys=False) + "\n").encode("ascii")
