"""As the 1.0.0 to 1.2.1 example consumer: async, with the proxy's type imported from the
original package, and a private field of aio-pika's message."""

import asyncio
import logging
import traceback

from amqpdispatcher.amqp_proxy import AMQPProxy

logger = logging.getLogger(__name__)


class Consumer:
    def __init__(self) -> None:
        logger.info("I've been primarily initialized!")

    async def consume(self, amqp: AMQPProxy, msg):
        logger.debug("Consuming primary message: %s", msg.body)

        # Positional, empty headers, a bytes body, to a routing key nothing is bound to.
        await amqp.publish("amq.direct", "dead_rk", {}, b"New body!")
        await asyncio.sleep(0.2)

        logger.debug(f"Done primary sleeping {amqp._message.raw_message.delivery_tag}")
        await amqp.ack()

    async def shutdown(self, exception=None):
        if exception is not None:
            logging.error(traceback.format_exc())
        else:
            logging.debug("Shut down primary worker cleanly")
