"""The amqp-dispatcher runtime: what a generated service package imports and runs.

This package never imports the compiler, yaml, jsonschema or jinja2: a production install
brings only gevent and pika.
"""

from __future__ import annotations

from .spec import Binding, ConsumerEntry, ConsumerProtocol, Exchange, Queue, Service
from .version import VERSION

__all__ = [
    "VERSION",
    "Binding",
    "ConsumerEntry",
    "ConsumerProtocol",
    "Exchange",
    "Queue",
    "Service",
]
