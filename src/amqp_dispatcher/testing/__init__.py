"""Test a service's consumers without RabbitMQ: `amqp_dispatcher.testing`.

The package built by dispatcher-build runs on an in-memory broker that follows RabbitMQ's
rules (routing, prefetch, requeue and redelivered, dead-lettering with x-death, TTL, max-length,
quorum delivery limits, confirms and returns), on a clock the test moves, through the same
pools, proxy and error policies as in production. With pytest, the `dispatcher` fixture
(plugin.py, registered as a pytest plugin when amqp-dispatcher is installed) starts one and
stops it after the test:

    def test_an_order_is_stored(dispatcher):
        kit = dispatcher("service")
        kit.publish("orders", "order.created", b'{"id": 1}')
        kit.run_until_idle()
        assert [m.body for m in kit.acked("orders")] == [b'{"id": 1}']

docs/testing.md is the guide; it says what the in-memory broker does not model.
"""

from __future__ import annotations

from .harness import Harness, KitError, StillRunning
from .views import Answer, DroppedMessage, Failure, QueuedMessage

__all__ = ["Answer", "DroppedMessage", "Failure", "Harness", "KitError", "QueuedMessage", "StillRunning"]
