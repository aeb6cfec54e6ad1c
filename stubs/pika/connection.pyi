import abc
import ssl
from collections.abc import Callable
from typing import Any

from pika import frame, spec
from pika.channel import Channel
from pika.credentials import ExternalCredentials, PlainCredentials

class Parameters:
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...

class ConnectionParameters(Parameters):
    class _DEFAULT: ...  # pika's sentinel: a parameter left at it takes Parameters' default

    def __init__(
        self,
        host: str | type[_DEFAULT] = ...,
        port: int | type[_DEFAULT] = ...,
        virtual_host: str | type[_DEFAULT] = ...,
        credentials: PlainCredentials | ExternalCredentials | type[_DEFAULT] = ...,
        channel_max: int | type[_DEFAULT] = ...,
        frame_max: int | type[_DEFAULT] = ...,
        heartbeat: int | Callable[[Connection, float], int] | type[_DEFAULT] | None = ...,
        ssl_options: SSLOptions | type[_DEFAULT] | None = ...,
        connection_attempts: int | type[_DEFAULT] = ...,
        retry_delay: float | type[_DEFAULT] = ...,
        socket_timeout: float | type[_DEFAULT] | None = ...,
        stack_timeout: float | type[_DEFAULT] | None = ...,
        locale: str | type[_DEFAULT] = ...,
        blocked_connection_timeout: float | type[_DEFAULT] | None = ...,
        client_properties: dict[str, Any] | type[_DEFAULT] | None = ...,
        tcp_options: dict[str, Any] | type[_DEFAULT] | None = ...,
        **kwargs: Any,
    ) -> None: ...

class SSLOptions:
    context: ssl.SSLContext
    server_hostname: str | None
    def __init__(self, context: ssl.SSLContext, server_hostname: str | None = None) -> None: ...

class Connection(metaclass=abc.ABCMeta):
    params: Parameters
    _frame_buffer: bytes
    def add_on_close_callback(self, callback: Callable[[Connection, Exception], Any]) -> None: ...
    def add_on_connection_blocked_callback(
        self, callback: Callable[[Connection, frame.Method[spec.Connection.Blocked]], Any]
    ) -> None: ...
    def add_on_connection_unblocked_callback(
        self, callback: Callable[[Connection, frame.Method[spec.Connection.Unblocked]], Any]
    ) -> None: ...
    def channel(
        self, channel_number: int | None = None, on_open_callback: Callable[[Channel], Any] | None = None
    ) -> Channel: ...
    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_closing(self) -> bool: ...
    @property
    def is_open(self) -> bool: ...
    def _read_frame(self) -> tuple[int, frame.Frame | frame.ProtocolHeader | None]: ...
