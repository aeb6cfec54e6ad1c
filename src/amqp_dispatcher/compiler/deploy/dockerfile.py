"""The Dockerfile: the image that runs the generated package, built from the config's directory.

Owns the values the Dockerfile template places: the COPY lines (layout.py finds what to
copy), the labels, and the HEALTHCHECK on /livez when the config turns the HTTP endpoint on
(with the standard library's urllib, since the slim image has no curl). Knows nothing of
where the files are written.
"""

from __future__ import annotations

import json

from amqp_dispatcher.runtime.deadlines import grace_period
from amqp_dispatcher.runtime.spec import Http, Service
from amqp_dispatcher.runtime.version import VERSION

from ..refs import ImportRef
from . import names, text
from .layout import Copy, Layout

FILE = "Dockerfile"
# Loopback and wildcard addresses the health check reaches at 127.0.0.1 inside the container.
_LOCAL = frozenset({"0.0.0.0", "::", "127.0.0.1", "localhost"})
# Probe timing: not in the config. The start period covers importing the modules and running
# the startup handler; the endpoint answers /livez from then on, connected or not.
_HEALTH_OPTIONS = "--interval=30s --timeout=5s --start-period=30s --retries=3"


def render(service: Service[ImportRef, ImportRef], layout: Layout, *, config_name: str, package: str) -> str:
    values = {
        "header": text.header(config_name),
        "name": names.deploy_name(service.name),
        "user": names.user_name(service.name),
        "config_name": text.printable(config_name),
        "package": package,
        "dockerfile": f"{layout.deploy}/{FILE}",
        "installed_note": _installed_note(layout.installed),
        "grace": str(grace_period(service.shutdown_timeout)),
        "shutdown_timeout": f"{service.shutdown_timeout:g}",
        "version": VERSION,
        "config_sha256": service.config_sha256,
        "copies": "\n".join(_copy(copy) for copy in (*layout.modules, layout.package)),
        "healthcheck": _healthcheck(service.http) if service.http else "",
    }
    return text.template(f"{FILE}.tmpl").substitute(values)


def _copy(copy: Copy) -> str:
    """The JSON form, which takes any path, spaces included."""
    return f"COPY {json.dumps([copy.source, copy.target])}"


def _installed_note(modules: tuple[str, ...]) -> str:
    if not modules:
        return ""
    listed = ", ".join(modules)
    return f"# Found in no import root, so installed, not copied: {listed}; put their distributions there too.\n"


def _healthcheck(http: Http) -> str:
    """/livez at the port the service listens on (DISPATCHER_HTTP_PORT, else the config's)."""
    host = "127.0.0.1" if http.host in _LOCAL else (f"[{http.host}]" if ":" in http.host else http.host)
    code = (
        "import os, urllib.request; "
        f"urllib.request.urlopen('http://{host}:' + os.environ.get('DISPATCHER_HTTP_PORT', '{http.port}')"
        " + '/livez', timeout=4)"
    )
    return (
        "\n# /livez answers while the gevent hub runs; urlopen raises on anything but 200.\n"
        f"HEALTHCHECK {_HEALTH_OPTIONS} \\\n    CMD {json.dumps(['python', '-c', code])}\n"
    )
