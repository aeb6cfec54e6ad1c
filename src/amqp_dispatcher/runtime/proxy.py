"""The `amqp` proxy a consumer gets with each message: ack, nack, reject and publish.

Owns the answering rules of the classic contract: one answer per message, a second one raises
AlreadyAnswered, and an answer for a message whose channel has closed is dropped (the broker
has already put the message back) with a log line, never sent on another channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import AlreadyAnswered, PublishReturned
from .message import PROPERTY_NAMES

if TYPE_CHECKING:
    from .logs import PrefixedLog
    from .publisher import Publisher
    from .tracing import Tracer
    from .transport import Delivery

# What publish() takes as keyword arguments: headers are an argument of their own, and
# cluster_id is deprecated by AMQP.
_PROPERTIES = frozenset(PROPERTY_NAMES) - {"headers", "cluster_id"}


class AMQPProxy:
    """What `consume(amqp, msg)` receives as `amqp`."""

    __slots__ = ("_answer", "_delivery", "_log", "_publisher", "_raise_unroutable", "_tracer")

    def __init__(
        self,
        delivery: Delivery,
        publisher: Publisher,
        log: PrefixedLog,
        *,
        raise_unroutable: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        self._delivery = delivery
        self._publisher = publisher
        self._log = log
        self._answer: str | None = None
        self._raise_unroutable = raise_unroutable
        self._tracer = tracer

    @property
    def has_responded_to_message(self) -> bool:
        return self._answer is not None

    @property
    def tag(self) -> int:
        """The delivery tag of the message."""
        return self._delivery.tag

    def ack(self) -> None:
        self._settle("ack", self._delivery.ack)

    def nack(self, requeue: bool = True) -> None:
        self._settle("nack", lambda: self._delivery.nack(requeue=requeue), requeue=requeue)

    def reject(self, requeue: bool = True) -> None:
        self._settle("reject", lambda: self._delivery.reject(requeue=requeue), requeue=requeue)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        headers: Mapping[str, Any] | None,
        body: bytes | str,
        *,
        mandatory: bool | None = None,
        timeout: float = 30.0,
        **properties: Any,
    ) -> None:
        """Publish and return once the broker has confirmed the message.

        `body` may be bytes or text (sent as UTF-8). Properties are those of AMQP (content_type,
        delivery_mode, correlation_id, reply_to, message_id, expiration, priority, timestamp,
        ...); messages are persistent (delivery_mode 2) unless told otherwise. Raises
        PublishRefused if the broker nacks it, and PublishTimeout if no confirm comes within
        `timeout` seconds.

        A message no queue receives (unroutable) is logged and counted, and publish returns, as
        in the original amqp-dispatcher, unless the config says `on_unroutable: raise`.
        `mandatory=True` raises PublishReturned for it whatever the config says, and
        `mandatory=False` lets the broker drop it without a word, as AMQP defines.
        """
        unknown = sorted(set(properties) - _PROPERTIES)
        if unknown:
            raise TypeError(f"publish() got unknown AMQP properties: {', '.join(unknown)}")
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        merged: dict[str, Any] = {"delivery_mode": 2, **properties}
        if headers:
            merged["headers"] = dict(headers)
        if self._tracer is None:
            self._publish(exchange, routing_key, payload, merged, mandatory, timeout)
            return
        merged["headers"] = dict(headers or {})
        with self._tracer.publishing(exchange, routing_key, merged["headers"]):
            self._publish(exchange, routing_key, payload, merged, mandatory, timeout)

    def _publish(
        self,
        exchange: str,
        routing_key: str,
        payload: bytes,
        merged: dict[str, Any],
        mandatory: bool | None,
        timeout: float,
    ) -> None:
        try:
            self._publisher.publish(
                exchange, routing_key, payload, merged, mandatory=mandatory is not False, timeout=timeout
            )
        except PublishReturned as returned:
            if mandatory or (mandatory is None and self._raise_unroutable):
                raise
            self._publisher.note_unroutable(exchange, routing_key, returned, self._log)

    def _settle(self, how: str, send: Any, *, requeue: bool = False) -> None:
        if self._answer is not None:
            raise AlreadyAnswered(
                f"cannot {how} delivery {self._delivery.tag}: it was already answered with {self._answer}"
            )
        self._answer = how  # set first, as the original did: a failed send still counts as the answer
        sent = send()
        # Where it went: back to its queue (requeue), or acked, nacked or rejected for good.
        self._delivery.outcome = ("requeue" if requeue else how) if sent else "dropped_stale"
        if not sent:
            self._log.warning(
                "%s of delivery %d dropped: its channel has closed, and the broker has requeued the message",
                how,
                self._delivery.tag,
            )
