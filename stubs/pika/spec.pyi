# pika's spec module is generated and unannotated. The attributes of the methods are typed as
# they are once decoded from the wire (their constructors default most of them to None).
from typing import Any

from pika import amqp_object
from pika.delivery_mode import DeliveryMode
from typing_extensions import Self

FRAME_HEADER: int
FRAME_END: int

class Connection(amqp_object.Class):
    class Blocked(amqp_object.Method): ...
    class Unblocked(amqp_object.Method): ...

class Exchange(amqp_object.Class):
    class DeclareOk(amqp_object.Method): ...

class Queue(amqp_object.Class):
    class DeclareOk(amqp_object.Method):
        message_count: int

    class BindOk(amqp_object.Method): ...

class Basic(amqp_object.Class):
    class QosOk(amqp_object.Method): ...
    class ConsumeOk(amqp_object.Method): ...
    class Cancel(amqp_object.Method): ...
    class CancelOk(amqp_object.Method): ...

    class Return(amqp_object.Method):
        reply_code: int
        reply_text: str
        exchange: str
        routing_key: str

    class Deliver(amqp_object.Method):
        consumer_tag: str
        delivery_tag: int
        redelivered: bool
        exchange: str
        routing_key: str

    class GetOk(amqp_object.Method):
        delivery_tag: int
        redelivered: bool
        exchange: str
        routing_key: str

    class GetEmpty(amqp_object.Method): ...
    class Ack(amqp_object.Method): ...
    class Nack(amqp_object.Method): ...

class Confirm(amqp_object.Class):
    class SelectOk(amqp_object.Method): ...

class BasicProperties(amqp_object.Properties):
    FLAG_CONTENT_TYPE: int
    FLAG_CONTENT_ENCODING: int
    FLAG_HEADERS: int
    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any] | None
    delivery_mode: int | None
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None
    message_id: str | None
    timestamp: int | None
    type: str | None
    user_id: str | None
    app_id: str | None
    cluster_id: str | None
    def __init__(
        self,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: dict[str, Any] | None = None,
        delivery_mode: int | DeliveryMode | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None: ...
    def decode(self, encoded: bytes, offset: int = 0) -> Self: ...
