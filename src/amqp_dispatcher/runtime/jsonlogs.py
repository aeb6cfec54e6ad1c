"""JSON log lines (LOG_FORMAT=json): one object per line, with what the line is about.

Owns the JSON formatter. Each line holds time (UTC, ISO 8601, milliseconds), level, logger,
process and message, and where known consumer, queue, delivery_tag, message_id and
correlation_id, then the exception as text. The context comes from the line's record (a pool's
PrefixedLog names its consumer entry) and from the greenlet that logs it: a consumer pool's
worker answers with the entry and the delivery in hand, so that the user's own lines from
`consume` carry them too, at no cost per message. JSON escapes everything outside printable
ASCII, so no value can start a line of its own. Knows nothing of where lines go.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

# On a greenlet: a callable returning the fields of what it is doing now (a pool's worker sets it).
GREENLET_FIELDS = "log_fields"
# On a record: the fields its logger adds, and the prefix its text format puts before the message.
RECORD_FIELDS = "dispatcher_fields"
RECORD_PREFIX = "dispatcher_prefix"
_ORDER = ("consumer", "queue", "delivery_tag", "message_id", "correlation_id")


class JsonFormatter(logging.Formatter):
    """A logging formatter; usable from a LOGGING_FILE_CONFIG file as
    `class=amqp_dispatcher.runtime.jsonlogs.JsonFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as error:  # noqa: BLE001 - a bad log call (wrong arguments) is still one JSON line
            return json.dumps(
                {
                    "time": _time(record.created),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": repr(record.msg),
                    "arguments": repr(record.args),
                    "format_error": f"{type(error).__name__}: {error}",
                },
                ensure_ascii=True,
                default=repr,
            )

    def _format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": _message(record),
        }
        context = _context(record)
        document.update((key, context[key]) for key in _ORDER if context.get(key) is not None)
        exception = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else "")
        if exception:
            document["exception"] = exception
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=True, default=str)


def _time(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


def _message(record: logging.LogRecord) -> str:
    """The message, without the prefix the text format puts before it (consumer and queue are fields here)."""
    text = record.getMessage()
    prefix = getattr(record, RECORD_PREFIX, None)
    if isinstance(prefix, str) and text.startswith(f"{prefix}: "):
        return text[len(prefix) + 2 :]
    return text


def _context(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    from_record = getattr(record, RECORD_FIELDS, None)
    if isinstance(from_record, Mapping):
        fields.update(from_record)
    from greenlet import getcurrent  # gevent's; imported when a JSON line is written, not with the runtime

    hook: Callable[[], Mapping[str, Any]] | None = getattr(getcurrent(), GREENLET_FIELDS, None)
    if callable(hook):
        with contextlib.suppress(Exception):  # a log line never fails for its context
            fields.update(hook())
    return fields
