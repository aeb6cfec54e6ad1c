"""Which transport reaches the broker: `DISPATCHER_TRANSPORT`, pamqp (the default) or pika.

Owns the choice, read from the environment, and the one place that imports a transport for
the broker a command names; a value that is not a transport's name is a ConfigurationError
naming the variable. Knows nothing of what the transports do.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigurationError
from .transport import Transport

VARIABLE = "DISPATCHER_TRANSPORT"
NAMES = ("pamqp", "pika")
DEFAULT = "pamqp"


def name_from_environment(environ: Mapping[str, str]) -> str:
    """The transport the environment names; raises ConfigurationError for any other value."""
    name = environ.get(VARIABLE, "").strip().lower() or DEFAULT
    if name not in NAMES:
        shown = environ[VARIABLE][:40]
        raise ConfigurationError(f"{VARIABLE}={shown!r} is not a transport: use one of {', '.join(NAMES)}")
    return name


def from_environment(environ: Mapping[str, str]) -> Transport:
    """The transport the environment names, imported only when chosen."""
    if name_from_environment(environ) == "pamqp":
        from .pamqp_transport import PamqpTransport

        return PamqpTransport()
    from .pika_transport import PikaTransport

    return PikaTransport()
