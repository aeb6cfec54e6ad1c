"""Logging: the `amqp-dispatcher` logger tree, LOGGING_FILE_CONFIG, a sensible default, and safe lines.

Owns how the service's logging is set up, in an order that respects the user: a
LOGGING_FILE_CONFIG file first; then, while the startup handler runs, a default that shows its
lines without preventing it from configuring logging itself; and only if nothing has configured
a handler by then, the same default for good. Also owns what reaches a log line: every logger
of the runtime escapes the unprintable characters of the values it interpolates (a queue name,
a routing key, an exception's text, all of which a message or a config can carry), so that no
value can forge a line or hide text from the person reading it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import sys
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from . import jsonlogs
from .errors import ConfigurationError

# The logger tree, one name per part of the runtime; users configure them by these names.
ROOT = "amqp-dispatcher"  # the runner: start, stop, exit status
CONNECTION = f"{ROOT}.connection"  # the supervisor: connecting, reconnecting, readiness
ENDPOINT = f"{ROOT}.endpoint"  # the HTTP endpoint: metrics and health
POOL = f"{ROOT}.pool"  # consumer pools, each line naming its consumer and queue
PROCESSES = f"{ROOT}.processes"  # the parent of several worker processes: starting, restarting, stopping them
PUBLISHER = f"{ROOT}.publisher"
SETTINGS = f"{ROOT}.settings"
TOPOLOGY = f"{ROOT}.topology"
TRANSPORT = f"{ROOT}.transport"
WATCHDOG = f"{ROOT}.watchdog"
FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
_json = False  # LOG_FORMAT=json (use_format)


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """The text with every unprintable character (controls, bidi overrides, ...) escaped."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or (keep_newlines and char == "\n") else _escape(char) for char in text)


_READABLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _READABLE:
        return _READABLE[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class Lines(str):
    """Text of several lines that we wrote ourselves (a stack), logged with its newlines kept."""

    __slots__ = ()


class _Safe:
    """An argument of a log call whose str() and repr() come out escaped."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return safe(str(self.value), keep_newlines=isinstance(self.value, Lines))

    def __repr__(self) -> str:
        return safe(repr(self.value))


class _SafeRecords(logging.Filter):
    """Escapes what a record interpolates, and its traceback, before any handler sees it.

    A filter on each of our loggers rather than a formatter: the handlers are the user's (from
    LOGGING_FILE_CONFIG or the startup handler), and a filter reaches all of them. Our own format
    strings keep their newlines (a stack is several lines); only the values are escaped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # A log line must never fail the code that logs it: if escaping fails, it goes out as it came.
        with contextlib.suppress(Exception):
            _escape_record(record)
        return True


def _escape_record(record: logging.LogRecord) -> None:
    if isinstance(record.args, Mapping):
        record.args = {key: _wrapped(value) for key, value in record.args.items()}
    elif record.args:
        record.args = tuple(_wrapped(arg) for arg in record.args)
    if not isinstance(record.msg, str):
        record.msg = _Safe(record.msg)
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = _traceback_text(record.exc_info[1])


def _traceback_text(error: BaseException) -> str:
    """The traceback as Python prints it (causes, contexts and groups included), with the text of
    each exception escaped onto its own line.

    The frames keep their line breaks; an exception's text (which a message body or a header can
    put there) has its line breaks and other unprintable characters escaped, so that it cannot
    start a line of its own that would pass for a log line.
    """
    exception = traceback.TracebackException.from_exception(error)
    pending, seen = [exception], set()
    while pending:  # every exception of the chain and of the groups, without recursion
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        text = getattr(node, "_str", None)  # the exception's text, as CPython 3.10 to 3.13 keep it
        if isinstance(text, str):
            setattr(node, "_str", safe(text))  # noqa: B010 - a private attribute, set only if it exists
        pending += [child for child in (node.__cause__, node.__context__) if child is not None]
        pending += getattr(node, "exceptions", None) or []
    return "".join(safe(line, keep_newlines=True) for line in exception.format(chain=True)).rstrip("\n")


def _wrapped(value: object) -> object:
    """Numbers stay numbers, for %d and %g; everything else prints escaped."""
    return value if isinstance(value, int | float) else _Safe(value)


_FILTER = _SafeRecords()


def get_logger(name: str) -> logging.Logger:
    """A logger of the runtime's tree, which escapes what it interpolates."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


class PrefixedLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose every line starts by naming what it is about, such as a consumer entry;
    in JSON lines, `fields` name it instead (jsonlogs.py)."""

    def __init__(self, name: str, prefix: str, fields: Mapping[str, object] | None = None) -> None:
        super().__init__(get_logger(name), {})
        # The prefix goes into the format string, so its % (legal in a queue name) are doubled.
        self.prefix = safe(prefix).replace("%", "%%")
        self._extra = {jsonlogs.RECORD_PREFIX: safe(prefix), jsonlogs.RECORD_FIELDS: dict(fields or {})}

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        # A line without arguments is not %-formatted: its prefix must not be escaped for it.
        if self.isEnabledFor(level):
            prefix = self.prefix if args else self._extra[jsonlogs.RECORD_PREFIX]
            kwargs["extra"] = {**self._extra, **kwargs.get("extra", {})}
            self.logger.log(level, f"{prefix}: {msg}", *args, **kwargs)


def use_format(environ: Mapping[str, str]) -> None:
    """LOG_FORMAT: `text` (the default) or `json`, for the lines of the default configuration."""
    global _json  # noqa: PLW0603 - read once at start, like every other variable
    value = environ.get("LOG_FORMAT", "").strip().lower()
    if value not in ("", "text", "json"):
        raise ConfigurationError(f"LOG_FORMAT={safe(value)!r}: use text (the default) or json")
    _json = value == "json"


def formatter() -> logging.Formatter:
    """The default configuration's formatter, as LOG_FORMAT chose it."""
    return jsonlogs.JsonFormatter() if _json else logging.Formatter(FORMAT)


def configure_from_file(environ: Mapping[str, str]) -> None:
    """Apply LOGGING_FILE_CONFIG, a logging.config.fileConfig file, when it is set."""
    path = environ.get("LOGGING_FILE_CONFIG", "").strip()
    if not path:
        return
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as exc:  # fileConfig imports handler classes and evaluates args: user code
        problem = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigurationError(
            f"LOGGING_FILE_CONFIG={path}: cannot configure logging from it: {type(exc).__name__}: {safe(problem)}"
        ) from exc


def quiet_pika() -> None:
    """Silence pika, whose every failure our own log lines already report with more context.

    pika narrates connections and channels at INFO and repeats each broker refusal as a warning
    or error; one clear line per event is ours to write. Only where nothing set pika's level
    already, so that a logging file or the startup handler can turn it back on.
    """
    pika = logging.getLogger("pika")
    if pika.level == logging.NOTSET:
        pika.setLevel(logging.CRITICAL)


def is_configured() -> bool:
    """Whether a logging file or the user's code has set up a handler for our lines."""
    return bool(logging.getLogger().handlers or logging.getLogger(ROOT).handlers)


def ensure_configured() -> None:
    """A default configuration, unless a file or the startup handler has set one up."""
    if not is_configured():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])


@contextlib.contextmanager
def default_logging() -> Iterator[None]:
    """Lines shown by default while the service starts (the startup handler included), yet logging
    left free for that handler to configure; on the way out, the default stays only if nothing
    else was configured.

    Until something configures logging, lines go to Python's handler of last resort, which we
    make ours (stderr, our format, INFO): nothing is added to the root logger, so the startup
    handler's logging.basicConfig() still takes effect, its dictConfig or fileConfig meets no
    handler of ours, and its own INFO lines are shown rather than lost.
    """
    previous = logging.lastResort
    if not is_configured():
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setFormatter(formatter())
        logging.lastResort = fallback
        root = logging.getLogger()
        if root.level == logging.WARNING:  # Python's default: nobody has chosen a level
            root.setLevel(logging.INFO)
    try:
        yield
    finally:
        logging.lastResort = previous
        ensure_configured()
