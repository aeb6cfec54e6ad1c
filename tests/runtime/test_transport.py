"""Our logic around pika, with pika's connection factory replaced: host order and error mapping."""

from __future__ import annotations

import pika.exceptions
import pytest
from pika.adapters.utils import connection_workflow

from amqp_dispatcher.runtime.errors import (
    AccessRefused,
    BrokerUnreachable,
    ConnectionLost,
    DeclarationRefused,
    QueueUnavailable,
)
from amqp_dispatcher.runtime.pika_transport import channel as pika_channel
from amqp_dispatcher.runtime.pika_transport import connection, frames, translate
from amqp_dispatcher.runtime.settings import parse_url


def test_hosts_are_tried_in_random_order(monkeypatch: pytest.MonkeyPatch) -> None:
    orders = set()

    def create_connection(parameters, on_done):  # type: ignore[no-untyped-def]
        orders.add(tuple(p.host for p in parameters))
        on_done(connection_workflow.AMQPConnectionWorkflowFailed([ConnectionRefusedError(111, "Connection refused")]))

    monkeypatch.setattr(connection.GeventConnection, "create_connection", create_connection)
    settings = parse_url("amqp://u:p@a,b,c/", default_heartbeat=20)
    for _ in range(30):
        with pytest.raises(BrokerUnreachable):
            connection.PikaConnection.open(settings, name="test")
    assert len(orders) > 1 and all(sorted(order) == ["a", "b", "c"] for order in orders)


@pytest.mark.parametrize(
    "cause,expected,text",
    [
        (pika.exceptions.ProbableAuthenticationError("auth"), AccessRefused, "refused the credentials of user 'u'"),
        (pika.exceptions.ProbableAccessDeniedError("vhost"), AccessRefused, "refused access to vhost 'v'"),
        (ConnectionRefusedError(111, "Connection refused"), BrokerUnreachable, "Connection refused"),
        (connection_workflow.AMQPConnectorStackTimeout("slow"), BrokerUnreachable, "timed out"),
    ],
)
def test_connect_errors_are_fatal_only_when_retrying_cannot_help(monkeypatch, cause, expected, text) -> None:  # type: ignore[no-untyped-def]
    def create_connection(parameters, on_done):  # type: ignore[no-untyped-def]
        wrapped = connection_workflow.AMQPConnectorAMQPHandshakeError(cause)
        on_done(connection_workflow.AMQPConnectionWorkflowFailed([wrapped]))

    monkeypatch.setattr(connection.GeventConnection, "create_connection", create_connection)
    with pytest.raises(expected, match=text):
        connection.PikaConnection.open(parse_url("amqp://u:secret@h/v", default_heartbeat=20), name="test")


@pytest.mark.parametrize(
    "error,expected",
    [
        (pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED"), DeclarationRefused),
        (pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND"), DeclarationRefused),
        (
            pika.exceptions.ChannelClosedByBroker(
                404, "NOT_FOUND - home node 'rabbit@b' of durable queue 'q' in vhost '/' is down or inaccessible"
            ),
            QueueUnavailable,
        ),
        (pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED"), ConnectionLost),
        (pika.exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED"), AccessRefused),
        (pika.exceptions.StreamLostError("reset"), ConnectionLost),
    ],
)
def test_broker_errors_are_translated_by_class(error: Exception, expected: type) -> None:
    translated = translate.translate(error, "declaring queue 'q'")
    assert type(translated) is expected
    assert str(translated).startswith("declaring queue 'q': ")


def test_pika_properties_hold_exactly_the_amqp_properties() -> None:
    """The delivery path reads BasicProperties' __dict__ as the property set: keep that true."""
    import pika

    from amqp_dispatcher.runtime.message import PROPERTY_NAMES

    assert set(vars(pika.BasicProperties())) == set(PROPERTY_NAMES)


def test_a_message_keeps_only_the_properties_that_are_set() -> None:
    import pika
    import pika.spec

    method = pika.spec.Basic.Deliver(
        consumer_tag="ctag", delivery_tag=7, redelivered=True, exchange="e", routing_key="k"
    )
    message = frames._message(method, pika.BasicProperties(content_type="text/plain", headers={"a": 1}), b"\xff")
    assert message.body == b"\xff" and message.headers == {"a": 1}
    assert message.properties == {"content_type": "text/plain", "headers": {"a": 1}}
    assert message.delivery_info == {
        "exchange": "e",
        "routing_key": "k",
        "delivery_tag": 7,
        "redelivered": True,
        "consumer_tag": "ctag",
    }


@pytest.mark.parametrize(
    "properties",
    [{"headers": {"price": 10**19}}, {"headers": {"ratio": 0.5}}, {"content_type": 5}, {"priority": 1000}],
)
def test_a_message_pika_cannot_encode_is_refused_cleanly_with_nothing_sent(properties: dict[str, object]) -> None:
    import pika
    import pika.frame

    from amqp_dispatcher.runtime.errors import PublishUnencodable

    sent = []

    class Raw:
        is_open = True

        def basic_publish(self, exchange, routing_key, body, properties, mandatory):  # type: ignore[no-untyped-def]
            frames = [pika.frame.Header(1, len(body), properties).marshal()]  # as pika marshals before writing
            sent.extend(frames)

    channel = pika_channel.PikaChannel.__new__(pika_channel.PikaChannel)
    channel._raw = Raw()
    with pytest.raises(PublishUnencodable):
        channel.publish("", "q", b"body", properties, mandatory=True, timeout=1)
    assert sent == []
