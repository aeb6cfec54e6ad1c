"""As the 1.x example secondary consumer."""

import asyncio
import logging
import traceback

logger = logging.getLogger(__name__)


class SecondaryConsumer:
    """
    This is an example of a consumer that does not try to do its own
    acknowledging or rejecting, but just does some work.
    """

    def __init__(self) -> None:
        logger.info("I've been secondarily initialized!")

    async def consume(self, amqp, msg):
        # 1.x gave the body as a str.
        logger.debug("Consuming secondary message: " + msg.body)
        await asyncio.sleep(0.2)
        logger.debug("Done secondary sleeping, and working")

    async def shutdown(self, exception=None):
        if exception is not None:
            logging.error(traceback.format_exc())
        else:
            logging.debug("Shut down secondary worker cleanly")
