"""As 1.3.0's tests/consumers/base_test_consumer.py: the logger of the original package, and a
__del__ that 1.x's disconnection test counted."""

import traceback

from amqpdispatcher.amqp_proxy import AMQPProxy
from amqpdispatcher.logging import getLogger
from amqpdispatcher.message import Message

logger = getLogger(__name__)


class BaseTestConsumer:
    @property
    def class_name(self) -> str:
        return self.__class__.__name__

    def __init__(self) -> None:
        logger.info(f"{self.class_name} initialized")

    async def consume(self, amqp: AMQPProxy, msg: Message) -> None:
        logger.info(f"{self.class_name} receiving message")

    async def shutdown(self, exception: Exception | None = None) -> None:
        if exception is not None:
            logger.error(traceback.format_exc())
        else:
            logger.info(f"shutting down {self.class_name}")

    def __del__(self) -> None:
        logger.info(f"{self.class_name} destroyed")
