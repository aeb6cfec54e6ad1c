"""As 1.x's tests/consumers/publish_consumer.py: it acks first, then publishes, with headers and
body as keywords and an empty body."""

from amqpdispatcher.amqp_proxy import AMQPProxy

from legacy_tests.consumers.base_test_consumer import BaseTestConsumer


class PublishConsumer(BaseTestConsumer):
    async def consume(self, amqp: AMQPProxy, msg):
        await super().consume(amqp, msg)
        await amqp.ack()
        await amqp.publish("amq.direct", "publish_queue", headers={}, body=b"")
