from collections.abc import Callable, Sequence
from typing import Any

from pika import connection
from pika.adapters.base_connection import BaseConnection
from pika.adapters.utils import connection_workflow

class GeventConnection(BaseConnection):
    # custom_ioloop: a gevent loop (gevent._interfaces.ILoop) or pika's AbstractIOServices.
    def __init__(
        self,
        parameters: connection.Parameters | None = None,
        on_open_callback: Callable[[connection.Connection], None] | None = None,
        on_open_error_callback: Callable[[connection.Connection, BaseException], None] | None = None,
        on_close_callback: Callable[[connection.Connection, BaseException], None] | None = None,
        custom_ioloop: Any = None,
        internal_connection_workflow: bool = True,
    ) -> None: ...
    @classmethod
    def create_connection(
        cls,
        connection_configs: Sequence[connection.Parameters],
        on_done: Callable[[connection.Connection | connection_workflow.AMQPConnectorException], None],
        custom_ioloop: Any = None,
        workflow: connection_workflow.AbstractAMQPConnectionWorkflow | None = None,
    ) -> connection_workflow.AbstractAMQPConnectionWorkflow: ...
