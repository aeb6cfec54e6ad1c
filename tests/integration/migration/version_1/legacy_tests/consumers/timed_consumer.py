"""As 1.3.0's tests/consumers/timed_consumer.py, with a shorter wait."""

import asyncio

from amqpdispatcher.amqp_proxy import AMQPProxy
from amqpdispatcher.logging import getLogger

from legacy_tests.consumers.base_test_consumer import BaseTestConsumer

logger = getLogger(__name__)


class TimedConsumer(BaseTestConsumer):
    @property
    def waiting_time(self) -> float:
        return 0.5

    async def consume(self, amqp: AMQPProxy, msg):
        await super().consume(amqp, msg)
        await asyncio.sleep(self.waiting_time)
        logger.info(f"{self.class_name} finished work on message")
        await amqp.ack()
        logger.info(f"{self.class_name} acked message")
