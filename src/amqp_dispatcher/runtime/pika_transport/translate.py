"""pika's errors as ours: what a broker reply or a failed connection means for the service.

Owns the mapping from pika's exceptions to runtime/errors.py: refusals (access, a declaration,
TLS) are Fatal, anything a reconnect can fix is Recoverable (a queue whose home node in a
cluster is down included, though RabbitMQ answers it with a 404), and what pika's encoders and
decoders raise on a value they cannot handle. Knows nothing of channels or connections.
"""

from __future__ import annotations

import ssl
import struct

import pika.exceptions
from pika.adapters.utils import connection_workflow

from ..errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    ConnectionLost,
    DeclarationRefused,
    HandshakeRefused,
    QueueUnavailable,
)
from ..settings import ConnectionSettings

# Broker replies that retrying cannot fix, on a channel or a connection.
_ACCESS_CODES = {402, 403, 530}
_REFUSAL_CODES = {403, 404, 405, 406}
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
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker):
        code, text = exc.reply_code, exc.reply_text
        message = f"{prefix}{code} {text}"
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and _home_node_down(code, text):
            return QueueUnavailable(
                f"{message} (a classic queue lives on one node of a cluster; it is retried until that node is back, "
                "and a quorum queue would have stayed available)",
                reply_code=code,
                reply_text=text,
            )
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and code in _REFUSAL_CODES:
            return DeclarationRefused(message, reply_code=code, reply_text=text)
        if isinstance(exc, pika.exceptions.ConnectionClosedByBroker) and code in _ACCESS_CODES:
            return AccessRefused(message, reply_code=code, reply_text=text)
        return ConnectionLost(message, reply_code=code, reply_text=text)
    if isinstance(exc, pika.exceptions.ChannelClosedByClient):
        return ConnectionLost(f"{prefix}the channel was closed by this service")
    return ConnectionLost(f"{prefix}{describe(exc)}")


def _home_node_down(code: int, text: str) -> bool:
    """RabbitMQ's 404 for a durable classic queue whose node is down: "NOT_FOUND - home node
    'rabbit@b' of durable queue 'q' in vhost '/' is down or inaccessible"."""
    return code == 404 and "home node" in text and "is down or inaccessible" in text


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
        if isinstance(inner, pika.exceptions.ConnectionClosedByBroker) and inner.reply_code in _ACCESS_CODES:
            return AccessRefused(f"{where}: {inner.reply_code} {inner.reply_text}")
        if isinstance(inner, ssl.SSLCertVerificationError):
            return HandshakeRefused(
                f"{where}: the broker's TLS certificate failed verification: {inner.verify_message}"
            )
        if isinstance(inner, ssl.SSLError) and not isinstance(inner, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            # A protocol mismatch, such as amqps:// against a plain AMQP port: the same on every try.
            return HandshakeRefused(
                f"{where}: the TLS handshake failed ({inner.reason or inner}); is the port a TLS port "
                "(5671 by default), and does the broker accept this TLS version?"
            )
    last = causes[-1]
    return BrokerUnreachable(f"cannot connect to {settings.describe()}: {describe(getattr(last, 'exception', last))}")


def describe(exc: BaseException) -> str:
    if isinstance(exc, connection_workflow.AMQPConnectorStackTimeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
