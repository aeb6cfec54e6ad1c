"""Consumers in the classic amqp-dispatcher style: consume(amqp, msg) and shutdown(exception)."""

import json
import logging

log = logging.getLogger("shop")


class OrderConsumer:
    def consume(self, amqp, msg):
        order = json.loads(msg.body)
        log.info("order %s: %d x %s", order["id"], order["quantity"], order["item"])
        # Returning without answering acks the message.

    def shutdown(self, exception=None):
        if exception is not None:
            log.warning("order consumer replaced after %r", exception)


class RefundConsumer:
    def consume(self, amqp, msg):
        refund = json.loads(msg.body)
        if refund.get("amount", 0) <= 0:
            amqp.reject(requeue=False)  # to shop.dead-letters
            return
        log.info("refund %s: %.2f", refund["id"], refund["amount"])
        amqp.ack()

    def shutdown(self, exception=None):
        pass
