"""DISPATCHER_TRANSPORT: which AMQP client a process uses, and one line for any other value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import transports
from amqp_dispatcher.runtime.errors import ConfigurationError
from amqp_dispatcher.runtime.pamqp_transport import PamqpTransport
from amqp_dispatcher.runtime.pika_transport import PikaTransport


def test_pamqp_is_the_default_and_pika_stays_selectable() -> None:
    assert isinstance(transports.from_environment({}), PamqpTransport)
    assert isinstance(transports.from_environment({"DISPATCHER_TRANSPORT": " "}), PamqpTransport)
    assert isinstance(transports.from_environment({"DISPATCHER_TRANSPORT": "pamqp"}), PamqpTransport)
    assert isinstance(transports.from_environment({"DISPATCHER_TRANSPORT": " PIKA "}), PikaTransport)


@given(st.text(max_size=60))
def test_any_value_is_a_transport_or_one_line_naming_the_variable_and_the_choices(text: str) -> None:
    try:
        name = transports.name_from_environment({"DISPATCHER_TRANSPORT": text})
    except ConfigurationError as error:
        message = str(error)
        assert message.startswith("DISPATCHER_TRANSPORT=")
        assert message.endswith("is not a transport: use one of pamqp, pika")
        assert message.isprintable(), "no value can forge a log line"
    else:
        assert name == (text.strip().lower() or "pamqp")
