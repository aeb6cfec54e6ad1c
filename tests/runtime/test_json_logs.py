"""JSON log lines (LOG_FORMAT=json): one object per line, naming what each line is about.

What users rely on: every line parses as one JSON object whatever a message or a value holds;
lines about a consumer entry carry `consumer` and `queue` as fields, and lines logged while a
message is handled (the consumer's own included) carry its delivery tag, message id and
correlation id; exceptions come as text; a bad LOG_FORMAT is a one-line configuration error.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import logs
from amqp_dispatcher.runtime.errors import ConfigurationError
from amqp_dispatcher.runtime.jsonlogs import JsonFormatter

from .rig import Rig, wait_for


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_pool_line_names_its_entry_in_fields_not_in_the_message(lines: io.StringIO) -> None:
    log = logs.PrefixedLog(logs.POOL, "consumer m:C on queue 'orders'", {"consumer": "m:C", "queue": "orders"})
    log.warning("consuming on channel %d", 3)
    (line,) = parsed(lines)
    assert line["message"] == "consuming on channel 3"
    assert (line["consumer"], line["queue"], line["logger"], line["level"]) == ("m:C", "orders", logs.POOL, "WARNING")
    assert line["time"].endswith("Z") and "T" in line["time"]


class Chatty:
    def consume(self, amqp: Any, msg: Any) -> None:
        logging.getLogger("shop").info("handling %s", msg.body.decode())
        if msg.body == b"fail":
            raise ValueError("broken\nline")

    def shutdown(self, exception: BaseException | None = None) -> None:
        pass


def test_lines_logged_while_a_message_is_handled_carry_the_delivery(lines: io.StringIO) -> None:
    rig = Rig(Chatty)
    try:
        rig.broker.publish("", "q", b"one", {"message_id": "m-1", "correlation_id": "c-1"})
        rig.broker.publish("", "q", b"fail", {"message_id": "m-2"})
        wait_for(lambda: len(rig.broker.settled) >= 2)
    finally:
        rig.close()
    own = [line for line in parsed(lines) if line["logger"] == "shop"]
    assert own[0]["message"] == "handling one"
    assert (own[0]["consumer"], own[0]["queue"]) == ("tests.runtime.test_json_logs:Chatty", "q")
    assert (own[0]["delivery_tag"], own[0]["message_id"], own[0]["correlation_id"]) == (1, "m-1", "c-1")
    (raised,) = [line for line in parsed(lines) if line["message"].startswith("consume raised")]
    assert raised["message_id"] == "m-2" and "correlation_id" not in raised
    assert "ValueError: broken\\nline" in raised["exception"], "the exception's text cannot start a line"


@given(st.text(), st.lists(st.text() | st.integers(), max_size=3))
def test_any_message_is_one_line_of_ascii_json_that_round_trips(text: str, arguments: list[object]) -> None:
    template = text.replace("%", "%%") + " %s" * len(arguments)
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, template, tuple(arguments), None)
    output = JsonFormatter().format(record)
    assert "\n" not in output and output.isascii()
    assert json.loads(output)["message"] == record.getMessage()


@pytest.mark.parametrize("value", ["", "text", "json", " JSON "])
def test_log_format_accepts_text_and_json(value: str) -> None:
    logs.use_format({"LOG_FORMAT": value})
    try:
        assert isinstance(logs.formatter(), JsonFormatter) is (value.strip().lower() == "json")
    finally:
        logs.use_format({})


def test_another_log_format_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"LOG_FORMAT='yaml': use text \(the default\) or json"):
        logs.use_format({"LOG_FORMAT": "yaml"})


@given(st.text(max_size=12))
def test_any_log_format_but_text_or_json_is_refused_in_one_line(value: str) -> None:
    if value.strip().lower() in ("", "text", "json"):
        logs.use_format({"LOG_FORMAT": value})
        logs.use_format({})
        return
    with pytest.raises(ConfigurationError) as refusal:
        logs.use_format({"LOG_FORMAT": value})
    message = str(refusal.value)
    assert message.startswith("LOG_FORMAT=") and message.endswith("use text (the default) or json")
    assert "\n" not in message and message.isprintable()
