"""What a broker's close means for the service: its reply code and text as one of our errors.

Owns the reading of RabbitMQ's channel.close and connection.close, shared by every transport:
a refused declaration (403 to 406 on a channel), refused access (402, 403 or 530 on a
connection) and a TLS handshake that fails the same way on every try are Fatal; a classic
queue whose home node in a cluster is down (a 404 on a channel) is Recoverable, as is anything
else a reconnect can fix. Knows no AMQP library.
"""

from __future__ import annotations

import ssl

from .errors import AccessRefused, BrokerError, ConnectionLost, DeclarationRefused, HandshakeRefused, QueueUnavailable

# Broker replies that retrying cannot fix, on a channel or a connection.
ACCESS_CODES = frozenset({402, 403, 530})
REFUSAL_CODES = frozenset({403, 404, 405, 406})


def channel_closed(code: int, text: str, what: str = "") -> BrokerError:
    """The broker closed a channel with `code` and `text`; `what` says what the service was doing."""
    message = f"{what}: {code} {text}" if what else f"{code} {text}"
    if home_node_down(code, text):
        return QueueUnavailable(
            f"{message} (a classic queue lives on one node of a cluster; it is retried until that node is back, "
            "and a quorum queue would have stayed available)",
            reply_code=code,
            reply_text=text,
        )
    if code in REFUSAL_CODES:
        return DeclarationRefused(message, reply_code=code, reply_text=text)
    return ConnectionLost(message, reply_code=code, reply_text=text)


def connection_closed(code: int, text: str, what: str = "") -> BrokerError:
    """The broker closed the connection with `code` and `text`."""
    message = f"{what}: {code} {text}" if what else f"{code} {text}"
    if code in ACCESS_CODES:
        return AccessRefused(message, reply_code=code, reply_text=text)
    return ConnectionLost(message, reply_code=code, reply_text=text)


def home_node_down(code: int, text: str) -> bool:
    """RabbitMQ's 404 for a durable classic queue whose node is down: "NOT_FOUND - home node
    'rabbit@b' of durable queue 'q' in vhost '/' is down or inaccessible"."""
    return code == 404 and "home node" in text and "is down or inaccessible" in text


def tls_refused(exc: BaseException, where: str) -> HandshakeRefused | None:
    """A TLS failure that is the same on every try (a certificate that fails verification, a
    protocol mismatch such as amqps:// against a plain AMQP port), or None for any other error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HandshakeRefused(f"{where}: the broker's TLS certificate failed verification: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return HandshakeRefused(
            f"{where}: the TLS handshake failed ({exc.reason or exc}); is the port a TLS port "
            "(5671 by default), and does the broker accept this TLS version?"
        )
    return None
