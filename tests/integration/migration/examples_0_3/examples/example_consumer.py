"""As the example consumer of 0.1.1 to 0.12.1, deterministic: the first delivery of each body
that starts with "fail" raises ValueError, where the original raised at random.

Its shutdown calls traceback.format_exc() without the exception, as 0.11 did; the earlier
format_exc(exception) is a TypeError on Python 3 (docs/migrating.md, "Things that break on
Python 3 whatever the version").
"""

import logging
import traceback

import gevent

logger = logging.getLogger(__name__)

# Bodies that have failed once: their redelivery succeeds.
failed = set()


class Consumer:
    def __init__(self):
        logger.info("I've been initiliazed")

    def consume(self, amqp, msg):
        logger.debug("Consuming message: %s", msg.body)

        gevent.sleep(0.1)
        # Always, before deciding: positional, empty headers, a str body, a key nothing is bound to.
        amqp.publish("test_exchange", "dead_rk", {}, "New body!")
        if msg.body.startswith(b"fail") and msg.body not in failed:
            failed.add(msg.body)
            raise ValueError()
        logger.debug("Done sleeping")
        amqp.ack()

    def shutdown(self, exception=None):
        if exception is not None:
            logging.error(traceback.format_exc())
        else:
            logging.debug("Shut down worker cleanly")
