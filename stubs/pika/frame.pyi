from typing import Generic, TypeVar

from pika import amqp_object, spec

_MethodT = TypeVar("_MethodT", bound=amqp_object.Method)

class Frame(amqp_object.AMQPObject):
    frame_type: int
    channel_number: int
    def __init__(self, frame_type: int, channel_number: int) -> None: ...

class Method(Frame, Generic[_MethodT]):
    method: _MethodT
    def __init__(self, channel_number: int, method: _MethodT) -> None: ...

class Header(Frame):
    body_size: int
    properties: spec.BasicProperties
    def __init__(self, channel_number: int, body_size: int, props: spec.BasicProperties) -> None: ...

class ProtocolHeader(amqp_object.AMQPObject):
    def __init__(self, major: int | None = None, minor: int | None = None, revision: int | None = None) -> None: ...

def decode_frame(data_in: bytes) -> tuple[int, Frame | ProtocolHeader | None]: ...
