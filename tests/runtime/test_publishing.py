"""amqp.publish from a consumer, on the in-memory broker.

What users rely on: publish returns once the broker has confirmed; messages are persistent
unless told otherwise; a refusal raises in the consumer; the publishing connection is its own,
opened on first use and opened again after it is lost.
"""

from __future__ import annotations

from typing import Any

import pytest

from amqp_dispatcher.runtime import pool as pool_module
from amqp_dispatcher.runtime.errors import ConnectionLost, PublishError, PublishRefused

from .rig import Rig, queue, wait_for

outcomes: list[Any] = []


class Forwarding:
    def consume(self, amqp: Any, msg: Any) -> None:
        try:
            amqp.publish("", "out", {"trace": msg.body.decode()}, msg.body, correlation_id="c-1")
        except PublishError as error:
            outcomes.append(type(error).__name__)
            raise
        outcomes.append("confirmed")

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes.clear()
    monkeypatch.setattr(pool_module, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(pool_module, "BACKOFF_CAP", 0.002)


def out_queue(rig: Rig) -> None:
    rig.broker.declare_queue(queue("out"))


def test_a_published_message_arrives_persistent_with_its_headers_and_properties() -> None:
    rig = Rig(Forwarding)
    out_queue(rig)
    try:
        rig.send(1, b"one")
        wait_for(lambda: rig.settled(1))
        (sent,) = rig.ready("out")
        assert sent.body == b"one"
        assert sent.properties == {"delivery_mode": 2, "correlation_id": "c-1", "headers": {"trace": "one"}}
        assert outcomes == ["confirmed"] and rig.settled(1) == [("ack", False)]
    finally:
        rig.close()


def test_a_nacked_publish_raises_in_the_consumer() -> None:
    rig = Rig(Forwarding)
    out_queue(rig)
    rig.broker.nacking = True
    try:
        rig.send(1, b"one")
        wait_for(lambda: rig.settled(1))
        assert outcomes[0] == PublishRefused.__name__
        assert rig.settled(1)[0] == ("reject", True), "the consume failed, so the message goes back"
    finally:
        rig.close()


def test_the_publishing_connection_is_opened_again_after_it_is_lost() -> None:
    rig = Rig(Forwarding)
    out_queue(rig)
    try:
        rig.send(1, b"one")
        wait_for(lambda: rig.settled(1))
        (publishing,) = [c for c in rig.broker.connections if c.name.endswith("(publisher)")]
        publishing.close_by_broker(ConnectionLost("320 CONNECTION_FORCED"))
        rig.send(2, b"two")
        wait_for(lambda: rig.settled(2))
        assert [m.body for m in rig.ready("out")] == [b"one", b"two"]
        assert outcomes == ["confirmed", "confirmed"]
        assert rig.transport.opened == 3, "the consuming connection, then the publisher's twice"
    finally:
        rig.close()


def test_a_publish_to_an_exchange_that_does_not_exist_raises_and_the_next_one_works() -> None:
    class ToNowhere(Forwarding):
        def consume(self, amqp: Any, msg: Any) -> None:
            if msg.body == b"missing":
                try:
                    amqp.publish("no-such-exchange", "k", None, b"x")
                except PublishError as error:
                    outcomes.append(str(error))
                return
            super().consume(amqp, msg)

    rig = Rig(ToNowhere)
    out_queue(rig)
    try:
        rig.send(1, b"missing")
        wait_for(lambda: rig.settled(1))
        assert "404" in outcomes[0] and "no-such-exchange" in outcomes[0]
        rig.send(2, b"two")
        wait_for(lambda: rig.settled(2))
        assert outcomes[-1] == "confirmed", "the closed channel is not reused"
    finally:
        rig.close()
