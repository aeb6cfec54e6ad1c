"""As the 1.0.0 to 1.2.2 example startup handler: one INFO line on `amqp-dispatcher`, and no
logging setup of its own (1.x showed the line because it called basicConfig(DEBUG) first)."""

import logging


def startup():
    logger = logging.getLogger("amqp-dispatcher")
    logger.info("we started up")
