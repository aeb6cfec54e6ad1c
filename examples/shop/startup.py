"""Runs once before the service connects."""

import logging


def configure():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
