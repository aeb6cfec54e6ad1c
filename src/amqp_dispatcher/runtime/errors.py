"""The runtime's exceptions: one base class, split by what the service should do about each.

`Recoverable` broker errors (a lost or refused connection) are retried with backoff;
`Fatal` ones (bad credentials, a missing vhost, a refused declaration) stop the service with
exit status 3, because retrying cannot fix them. The reconnect loop reads `except Recoverable:`.
Errors a consumer's own code can cause (answering twice, a refused publish) have their own
classes, so that handlers can catch exactly them; the publish errors' wording is written once
here, for every transport. Also owns `ExitStatus`, the table of a service's exit statuses.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """How a service process ends: the one table, for the runner, `amqp-dispatcher` and the
    console scripts (`dispatcher-build` has its own, compiler/cli.BuildStatus)."""

    OK = 0  # stopped cleanly: every in-flight message finished
    KILLED = 1  # a second signal, or shutdown_timeout passed with messages in flight
    CONFLICT = 1  # `plan`: something in the config conflicts with what the broker has
    CONFIG = 2  # the config, the environment or the startup handler is wrong
    BROKER = 3  # the broker refused (credentials, vhost, a declaration, TLS) or stayed unreachable at start
    INTERNAL = 4  # a bug in amqp-dispatcher: it stops rather than stay up consuming nothing


class DispatcherError(Exception):
    """Base class of every amqp-dispatcher runtime error."""


class ConfigurationError(DispatcherError):
    """The environment describes the connection wrongly (exit status 2)."""


class BrokerError(DispatcherError):
    """RabbitMQ refused something, or could not be reached."""

    def __init__(self, message: str, *, reply_code: int | None = None, reply_text: str | None = None) -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.reply_text = reply_text


class Recoverable(BrokerError):
    """Worth retrying: the connection was lost, refused or timed out."""


class ConnectionLost(Recoverable):
    """An open connection or channel went away."""


class BrokerUnreachable(Recoverable):
    """No host of the URL accepted a connection."""


class QueueUnavailable(Recoverable):
    """A queue exists but cannot be used now: a classic queue whose home node in a cluster is down.
    Retried, since the node may come back (RabbitMQ refuses it with a 404 until then)."""


class Fatal(BrokerError):
    """Retrying cannot help: the service must stop (exit status 3)."""


class AccessRefused(Fatal):
    """Wrong credentials, a missing vhost, or no permission (403, 530)."""


class DeclarationRefused(Fatal):
    """The broker refused to declare, check or bind an entity (404, 405, 406, 403)."""


class HandshakeRefused(Fatal):
    """The TLS handshake cannot succeed: a plain port, a protocol mismatch, an untrusted certificate."""


class ProtocolError(DispatcherError):
    """A consumer used the message proxy in a way AMQP does not allow."""


class AlreadyAnswered(ProtocolError):
    """ack, nack or reject was called for a message that was already answered."""


class PublishError(DispatcherError):
    """A publish was not accepted by the broker."""


class PublishRefused(PublishError):
    """The broker nacked the message (it could not take responsibility for it)."""

    @classmethod
    def of(cls, exchange: str, routing_key: str) -> PublishRefused:
        return cls(f"the broker refused the message published to {exchange!r} {routing_key!r}")


class PublishUnencodable(PublishError):
    """The message cannot be encoded (a header value AMQP tables cannot carry); nothing was sent."""

    @classmethod
    def of_value(cls, value: object) -> PublishUnencodable:
        return cls(
            f"cannot send {value!r} ({type(value).__name__}) in a header: AMQP tables carry text, bytes, "
            "integers, booleans, Decimal, datetime, lists and dicts, not floats"
        )


class PublishReturned(PublishError):
    """The broker returned the message: no queue was bound to receive it (mandatory)."""

    def __init__(self, message: str, *, reply_code: int, reply_text: str) -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.reply_text = reply_text

    @classmethod
    def of(cls, exchange: str, routing_key: str, reply_code: int, reply_text: str) -> PublishReturned:
        return cls(
            f"the broker returned the message published to {exchange!r} with routing key {routing_key!r}: "
            f"{reply_code} {reply_text} (no queue is bound to receive it)",
            reply_code=reply_code,
            reply_text=reply_text,
        )


class PublishTimeout(PublishError):
    """No confirm arrived in time (the broker may be blocking publishers)."""

    @classmethod
    def of(cls, exchange: str, timeout: float) -> PublishTimeout:
        return cls(f"no confirm from the broker within {timeout:g} s for {exchange!r}")
