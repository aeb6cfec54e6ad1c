"""pika's errors as ours: what a broker reply or a failed connection means for the service.

Owns the mapping from pika's exceptions to runtime/errors.py (a broker's close read by
replies.py): refusals (access, a declaration, TLS) are Fatal, anything a reconnect can fix is
Recoverable, and what pika's encoders and decoders raise on a value they cannot handle. Knows
nothing of channels or connections.
"""

from __future__ import annotations

import struct

import pika.exceptions
from pika.adapters.utils import connection_workflow

from .. import replies
from ..errors import AccessRefused, BrokerError, BrokerUnreachable, ConnectionLost
from ..settings import ConnectionSettings

# What pika's encoders raise on a value they cannot write (an integer beyond 64 bits, a property
# of the wrong type), and its decoders on one they cannot read (a timestamp past year 9999, a
# table nested past the recursion limit, an unknown field type).
ENCODING_ERRORS = (struct.error, TypeError, ValueError, OverflowError, AssertionError)
DECODING_ERRORS = (
    struct.error,
    ValueError,
    OverflowError,
    OSError,
    KeyError,
    IndexError,
    RecursionError,
    UnicodeDecodeError,
    pika.exceptions.InvalidFieldTypeException,
)


def translate(exc: BaseException, what: str = "") -> BrokerError:
    """Our error for a pika error: Fatal for refusals, Recoverable for lost connections."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, BrokerError):
        if not what:
            return exc
        return type(exc)(f"{prefix}{exc}", reply_code=exc.reply_code, reply_text=exc.reply_text)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return replies.channel_closed(exc.reply_code, exc.reply_text, what)
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
        return replies.connection_closed(exc.reply_code, exc.reply_text, what)
    if isinstance(exc, pika.exceptions.ChannelClosedByClient):
        return ConnectionLost(f"{prefix}the channel was closed by this service")
    return ConnectionLost(f"{prefix}{describe(exc)}")


def connect_error(exc: BaseException, settings: ConnectionSettings) -> BrokerError:
    """Refusals (credentials, vhost, certificates) are fatal; anything else is worth retrying."""
    causes = list(getattr(exc, "exceptions", ())) or [exc]
    for cause in causes:
        inner = getattr(cause, "exception", cause)
        where = settings.describe()
        if isinstance(inner, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError):
            return AccessRefused(f"{where}: the broker refused the credentials of user {settings.username!r}")
        if isinstance(inner, pika.exceptions.ProbableAccessDeniedError):
            return AccessRefused(
                f"{where}: the broker refused access to vhost {settings.vhost!r} "
                "(it does not exist, or the user has no permission on it)"
            )
        if isinstance(inner, pika.exceptions.ConnectionClosedByBroker) and inner.reply_code in replies.ACCESS_CODES:
            return AccessRefused(f"{where}: {inner.reply_code} {inner.reply_text}")
        refused = replies.tls_refused(inner, where)
        if refused is not None:
            return refused
    last = causes[-1]
    return BrokerUnreachable(f"cannot connect to {settings.describe()}: {describe(getattr(last, 'exception', last))}")


def describe(exc: BaseException) -> str:
    if isinstance(exc, connection_workflow.AMQPConnectorStackTimeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
