"""The amqp-dispatcher runtime: what a generated service package imports and runs.

This package never imports the compiler, yaml, jsonschema or jinja2: a production install
brings only gevent, pika and prometheus_client (the last imported only for the HTTP
endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

from .spec import (
    Binding,
    ConsumerEntry,
    ConsumerProtocol,
    Exchange,
    Http,
    LiveService,
    Queue,
    Reject,
    Requeue,
    Retry,
    Service,
)
from .version import VERSION


def main(service: LiveService, arguments: Sequence[str], *, package: str) -> int:
    """`python -m <package> [check]`: what a generated __main__.py calls; returns the exit status."""
    from .command import main as command

    return command(service, arguments, package=package)


def run(service: LiveService) -> int:
    """Run a service until it is stopped; returns the exit status (see runner.py)."""
    # Imported here so that importing the package (the spec classes) loads neither gevent nor pika.
    from .runner import run_service

    return run_service(service)


__all__ = [
    "VERSION",
    "Binding",
    "ConsumerEntry",
    "ConsumerProtocol",
    "Exchange",
    "Http",
    "LiveService",
    "Queue",
    "Reject",
    "Requeue",
    "Retry",
    "Service",
    "main",
    "run",
]
