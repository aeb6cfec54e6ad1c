"""As 1.x's tests/consumers/immediate_consumer.py."""

from amqpdispatcher.amqp_proxy import AMQPProxy

from legacy_tests.consumers.base_test_consumer import BaseTestConsumer


class ImmediateConsumer(BaseTestConsumer):
    async def consume(self, amqp: AMQPProxy, msg):
        await super().consume(amqp, msg)
        await amqp.ack()


class ImmediateConsumer2(ImmediateConsumer):
    pass
