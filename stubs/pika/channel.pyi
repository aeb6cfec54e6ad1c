from collections.abc import Callable, Sequence
from typing import Any

from pika import amqp_object, frame, spec

_OnAckNackCallback = Callable[[frame.Method[spec.Basic.Ack | spec.Basic.Nack]], None]
_OnConfirmDeliveryCallback = Callable[[frame.Method[spec.Confirm.SelectOk]], None]
_OnBasicConsumeCallback = Callable[[frame.Method[spec.Basic.ConsumeOk]], None]
_OnBasicGetCallback = Callable[[Channel, spec.Basic.GetOk, spec.BasicProperties, bytes], None]
_OnBasicQosCallback = Callable[[frame.Method[spec.Basic.QosOk]], None]
_OnBasicCancelCallback = Callable[[frame.Method[spec.Basic.CancelOk]], None]
_OnCancelCallback = Callable[[frame.Method[spec.Basic.Cancel]], Any]
_OnCloseCallback = Callable[[Channel, Exception], None]
_OnExchangeDeclareCallback = Callable[[frame.Method[spec.Exchange.DeclareOk]], None]
_OnMessageCallback = Callable[[Channel, spec.Basic.Deliver, spec.BasicProperties, bytes], None]
_OnQueueBindCallback = Callable[[frame.Method[spec.Queue.BindOk]], None]
_OnQueueDeclareCallback = Callable[[frame.Method[spec.Queue.DeclareOk]], None]
_OnReturnCallback = Callable[[Channel, spec.Basic.Return, spec.BasicProperties, bytes], None]

class Channel:
    channel_number: int
    def add_callback(
        self, callback: Callable[..., Any], replies: Sequence[type[amqp_object.Method]], one_shot: bool = True
    ) -> None: ...
    def add_on_cancel_callback(self, callback: _OnCancelCallback) -> None: ...
    def add_on_close_callback(self, callback: _OnCloseCallback) -> None: ...
    def add_on_return_callback(self, callback: _OnReturnCallback) -> None: ...
    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None: ...
    def basic_cancel(self, consumer_tag: str = "", callback: _OnBasicCancelCallback | None = None) -> None: ...
    def basic_consume(
        self,
        queue: str,
        on_message_callback: _OnMessageCallback,
        auto_ack: bool = False,
        exclusive: bool = False,
        consumer_tag: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: _OnBasicConsumeCallback | None = None,
    ) -> str: ...
    def basic_get(self, queue: str, callback: _OnBasicGetCallback, auto_ack: bool = False) -> None: ...
    def basic_nack(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True) -> None: ...
    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.BasicProperties | None = None,
        mandatory: bool = False,
    ) -> None: ...
    def basic_qos(
        self,
        prefetch_size: int = 0,
        prefetch_count: int = 0,
        global_qos: bool = False,
        callback: _OnBasicQosCallback | None = None,
    ) -> None: ...
    def basic_reject(self, delivery_tag: int = 0, requeue: bool = True) -> None: ...
    def close(self, reply_code: int = 0, reply_text: str = "Normal shutdown") -> None: ...
    def confirm_delivery(
        self, ack_nack_callback: _OnAckNackCallback, callback: _OnConfirmDeliveryCallback | None = None
    ) -> None: ...
    def exchange_declare(
        self,
        exchange: str,
        exchange_type: str = ...,  # pika.exchange_type.ExchangeType.direct, a str enum
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: _OnExchangeDeclareCallback | None = None,
    ) -> None: ...
    @property
    def is_open(self) -> bool: ...
    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: _OnQueueBindCallback | None = None,
    ) -> None: ...
    def queue_declare(
        self,
        queue: str,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: _OnQueueDeclareCallback | None = None,
    ) -> None: ...
