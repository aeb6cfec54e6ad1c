"""The shop's consumers, tested without RabbitMQ: run `python -m pytest tests` in examples/."""

import json


def order(number, quantity=1, item="tea"):
    return json.dumps({"id": number, "quantity": quantity, "item": item})


def test_an_order_is_acknowledged(dispatcher):
    kit = dispatcher("service")  # the package dispatcher-build wrote, on an in-memory broker
    kit.publish("shop", "order.created", order(1))
    kit.run_until_idle()
    assert [message.body for message in kit.acked("shop.orders")] == [order(1).encode()]
    assert kit.messages("shop.orders") == []


def test_a_broken_order_is_retried_then_parked(dispatcher):
    kit = dispatcher("service")
    kit.publish("shop", "order.created", "not json", message_id="order-2")
    kit.run_until_idle()
    assert len(kit.failures) == 1  # retried in 1 s, on the test's clock
    kit.advance(1)
    assert len(kit.failures) == 2
    kit.run_until_done()  # the 10 s and 60 s delays pass in no time
    [parked] = kit.parked("shop.orders")
    assert parked.body == b"not json"
    assert parked.properties["message_id"] == "order-2"
    assert parked.headers["x-dispatcher-attempts"] == 4
    assert parked.headers["x-dispatcher-exception-type"] == "json.decoder.JSONDecodeError"


def test_a_refund_of_nothing_is_dead_lettered(dispatcher):
    kit = dispatcher("service")
    kit.publish("shop", "refund.created", json.dumps({"id": 7, "amount": 0}))
    kit.run_until_idle()
    [dead] = kit.messages("shop.dead-letters")
    assert dead.headers["x-death"][0]["reason"] == "rejected"
    assert dead.headers["x-death"][0]["queue"] == "shop.refunds"
