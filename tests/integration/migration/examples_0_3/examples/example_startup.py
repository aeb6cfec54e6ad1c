"""As the 0.5 to 0.12 example startup handler: a formatted stderr handler on the root logger,
and DEBUG on the root logger and on `amqp-dispatcher`."""

import logging


def startup():
    ch = logging.StreamHandler()
    ch.setLevel(logging.DEBUG)
    logformat = "[%(asctime)s] %(name)s [pid:%(process)d] - %(levelname)s - %(message)s"
    datefmt = "%Y-%m-%d %H:%M:%S"
    formatter = logging.Formatter(logformat, datefmt=datefmt)

    ch.setFormatter(formatter)
    ad_logger = logging.getLogger("amqp-dispatcher")
    ad_logger.setLevel(logging.DEBUG)

    root_logger = logging.getLogger("")
    root_logger.setLevel(logging.DEBUG)
    root_logger.addHandler(ch)
    # Not in the original: one line of its own, which the test looks for in this format.
    ad_logger.debug("Logging configured by the startup handler")
