"""What reaches a log line: values escaped, tracebacks whole, nothing that can forge a line."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime.logs import Lines, PrefixedLog, get_logger, safe

FORGED = "\n2026-01-01 00:00:00,000 ERROR amqp-dispatcher[1]: forged"


@pytest.fixture
def lines() -> Iterator[list[str]]:
    captured: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.emit = lambda record: captured.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("amqp-dispatcher")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.DEBUG
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_value_cannot_start_a_line_or_hide_text(lines: list[str]) -> None:
    get_logger("amqp-dispatcher.test").warning("queue %s, key %r", f"q{FORGED}", "k\u202eevil\x1b[31m")
    (line,) = lines
    assert "\n" not in line and line.isprintable()
    assert "\\n2026-01-01" in line and "\\u202e" in line and "\\x1b" in line


def test_an_exception_message_stays_on_its_line_and_the_stack_keeps_its_lines(lines: list[str]) -> None:
    try:
        try:
            raise ValueError(f"first{FORGED}")
        except ValueError as error:
            raise RuntimeError(f"second\u202e{FORGED}") from error
    except RuntimeError:
        PrefixedLog("amqp-dispatcher.pool", "consumer x:Y on queue 'q'").exception("consume raised on delivery %d", 7)
    (text,) = lines
    assert text.startswith("ERROR consumer x:Y on queue 'q': consume raised on delivery 7\nTraceback")
    assert "The above exception was the direct cause of the following exception" in text
    assert all(not line.startswith("2026-01-01") for line in text.splitlines()), "no forged line"
    assert "ValueError: first\\n2026-01-01" in text and "RuntimeError: second\\u202e\\n2026" in text
    assert all(line.isprintable() for line in text.splitlines())


def test_our_own_multi_line_text_keeps_its_lines(lines: list[str]) -> None:
    get_logger("amqp-dispatcher.watchdog").warning("blocked:\n%s", Lines('  File "x.py", line 1\n    loop()'))
    assert lines == ['WARNING blocked:\n  File "x.py", line 1\n    loop()']


def test_numbers_keep_their_formats(lines: list[str]) -> None:
    get_logger("amqp-dispatcher.test").info("%d of %.1f s, %g, %s", 3, 2.25, 0.5, True)
    assert lines == ["INFO 3 of 2.2 s, 0.5, True"]


@given(st.text())
def test_safe_text_is_always_printable(text: str) -> None:
    assert safe(text).isprintable()
    assert all(line.isprintable() for line in safe(text, keep_newlines=True).split("\n"))


def test_a_percent_sign_in_a_queue_name_loses_no_line(lines: list[str]) -> None:
    PrefixedLog("amqp-dispatcher.pool", "consumer m:C on queue 'orders%d'").info("consuming on channel %d", 1)
    assert lines == ["INFO consumer m:C on queue 'orders%d': consuming on channel 1"]


def test_a_percent_sign_in_a_queue_name_shows_once_in_a_line_without_arguments(lines: list[str]) -> None:
    PrefixedLog("amqp-dispatcher.pool", "consumer m:C on queue '100%'").warning("the broker cancelled the consumer")
    assert lines == ["WARNING consumer m:C on queue '100%': the broker cancelled the consumer"]


@pytest.mark.skipif(not hasattr(builtins, "ExceptionGroup"), reason="exception groups are Python 3.11's")
def test_a_group_s_members_and_a_long_chain_are_all_in_the_traceback(lines: list[str]) -> None:
    log = get_logger("amqp-dispatcher.test")
    group = builtins.ExceptionGroup
    try:
        raise group("two failures", [ValueError(f"one{FORGED}"), KeyError("two")])
    except Exception:
        log.exception("grouped")
    assert "ValueError: one\\n2026-01-01" in lines[0] and "KeyError: 'two'" in lines[0]
    error: BaseException = RuntimeError("root")
    for depth in range(1500):  # deeper than the recursion limit
        try:
            raise RuntimeError(f"level {depth}") from error
        except RuntimeError as raised:
            error = raised
    try:
        raise error
    except RuntimeError:
        log.exception("deep")
    assert lines[1].startswith("ERROR deep\n") and "RuntimeError: root" in lines[1]
