"""As 1.x's tests/consumers/forever_consumer.py: consume never returns, so the message stays
unacknowledged; ForeverConsumer2 is an empty subclass."""

import asyncio

from amqpdispatcher.amqp_proxy import AMQPProxy
from amqpdispatcher.message import Message

from legacy_tests.consumers.base_test_consumer import BaseTestConsumer


class ForeverConsumer(BaseTestConsumer):
    async def consume(self, amqp: AMQPProxy, msg: Message) -> None:
        await super().consume(amqp, msg)
        loop = asyncio.get_event_loop()
        future = loop.create_future()
        await future


class ForeverConsumer2(ForeverConsumer):
    pass
