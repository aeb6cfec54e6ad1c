"""A consumer written for amqp-dispatcher 1.x (asyncio), before the documented edits."""

import asyncio

from amqpdispatcher.amqp_proxy import AMQPProxy


class Consumer:
    async def consume(self, amqp: AMQPProxy, msg):
        await asyncio.sleep(0)
        await amqp.ack()

    async def shutdown(self, exception=None):
        pass
