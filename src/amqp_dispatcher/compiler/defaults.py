"""Defaults: the one place the effective value of every key the config may leave out is written.

The schema repeats them for editors (its `default`s), and a test keeps the two equal. Also
names the original's `x_*` queue keys, which the model merges into `arguments`. Knows nothing
of how the values are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SERVICE_DEFAULTS: Mapping[str, Any] = {
    "name": "amqp-dispatcher",
    "startup_handler": None,
    "monkey_patch": False,
    "heartbeat": 20,
    "shutdown_timeout": 30.0,
    "startup_timeout": 60.0,
    "blocking_threshold": None,
    "on_unroutable": "log",
    "http": None,
    "processes": 1,
    "queues": [],
    "exchanges": [],
}
HTTP_DEFAULTS: Mapping[str, Any] = {"host": "0.0.0.0"}
CONSUMER_DEFAULTS: Mapping[str, Any] = {"consumer_count": 1, "prefetch_count": 1, "on_error": "requeue"}
RETRY_DEFAULTS: Mapping[str, Any] = {"max_attempts": 5, "delays": [5, 30, 120]}
QUEUE_DEFAULTS: Mapping[str, Any] = {
    "durable": True,
    "auto_delete": False,
    "exclusive": False,
    "passive": False,
    "x_dead_letter_exchange": None,
    "x_dead_letter_routing_key": None,
    "x_max_length": None,
    "x_expires": None,
    "x_message_ttl": None,
    "x_queue_type": None,
    "arguments": {},
    "bindings": [],
}
BINDING_DEFAULTS: Mapping[str, Any] = {"routing_key": "", "arguments": {}}
EXCHANGE_DEFAULTS: Mapping[str, Any] = {
    "type": "direct",
    "durable": True,
    "auto_delete": False,
    "internal": False,
    "passive": False,
    "arguments": {},
}
LEGACY_ARGUMENT_KEYS = (
    "x_dead_letter_exchange",
    "x_dead_letter_routing_key",
    "x_max_length",
    "x_expires",
    "x_message_ttl",
    "x_queue_type",
)
