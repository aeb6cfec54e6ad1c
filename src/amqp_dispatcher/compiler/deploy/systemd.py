"""The systemd unit: the service under systemd, in a conventional /opt/<name> layout.

Owns the values the unit template places: the unit's file name, the user, the commands
(`python -m <package> check` before start, `python -m <package>` to run) and TimeoutStopSec.
Stopping is runtime/deadlines.py's derivation, never a margin of its own. Knows nothing of
where the file is written.
"""

from __future__ import annotations

from amqp_dispatcher.runtime.deadlines import grace_period
from amqp_dispatcher.runtime.spec import Service
from amqp_dispatcher.runtime.version import VERSION

from ..refs import ImportRef
from . import names, text


def file_name(service: Service[ImportRef, ImportRef]) -> str:
    return f"{names.deploy_name(service.name)}.service"


def render(service: Service[ImportRef, ImportRef], *, config_name: str, package: str) -> str:
    values = {
        "header": text.header(config_name),
        "name": names.deploy_name(service.name),
        "user": names.user_name(service.name),
        "unit": file_name(service),
        "package": package,
        "version": VERSION,
        "shutdown_timeout": f"{service.shutdown_timeout:g}",
        "grace": str(grace_period(service.shutdown_timeout)),
    }
    return text.template("unit.service.tmpl").substitute(values)
