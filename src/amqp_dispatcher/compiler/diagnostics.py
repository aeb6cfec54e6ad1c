"""Diagnostics: the one record every compiler stage reports a problem with.

Owns the `Diagnostic` record, source spans, config paths, anchors (the key or the value a
diagnostic points at, placed on the source at the end of the build), the wording of "did you
mean" and the table of codes. Knows nothing of how diagnostics are printed (report.py) or
found (the stages).
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from amqp_dispatcher.runtime.logs import safe

PathPart = str | int
ConfigPath = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Span:
    """A region of the config file: 1-based lines and columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a diagnostic points, before it is placed on the source: the key or the value at a
    config path, or, when that path is not written, the `otherwise` anchor."""

    path: ConfigPath
    part: Literal["key", "value"]
    otherwise: Anchor | None = None

    def or_key(self, path: ConfigPath) -> Anchor:
        """This anchor, or the key at `path` if this one's path is not written."""
        return Anchor(self.path, self.part, at_key(path))


def at_key(path: ConfigPath) -> Anchor:
    return Anchor(path, "key")


def at_value(path: ConfigPath) -> Anchor:
    return Anchor(path, "value")


@dataclass(frozen=True, slots=True)
class Code:
    """An entry of the code table: what docs/errors.md documents for each code."""

    code: str
    name: str
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    path: ConfigPath | None = None
    hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    anchor: Anchor | None = None  # where to place it, when the stage had no span

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[int, int, str, str]:
        span = self.span or Span(0, 0, 0, 0)
        return (span.line, span.column, self.code, self.message)


def closest(
    word: str, candidates: Iterable[str], *, cutoff: float = 0.6, fold: Callable[[str], str] = str
) -> str | None:
    """The candidate most like `word`, if any is close enough; `fold` says what to compare."""
    folded = {fold(candidate): candidate for candidate in candidates}
    matches = difflib.get_close_matches(fold(word), list(folded), n=1, cutoff=cutoff)
    return folded[matches[0]] if matches else None


def did_you_mean(shown: str) -> str:
    """The hint for a likely misspelling; `shown` is the close name, quoted as the caller quotes names."""
    return f"did you mean {shown}?"


def shorten(text: str, limit: int = 60) -> str:
    """A value as a message may echo it: at most `limit` characters, and nothing unprintable.

    Long values are cut with the full length noted, so that a huge scalar in the config is never
    printed whole; unprintable characters are escaped, so that none reaches a terminal or a log.
    """
    escaped = safe(text[: limit + 1])
    if len(text) <= limit and len(escaped) <= limit + 20:
        return escaped
    return f"{escaped[:limit]}... ({len(text):,} characters)"


def format_path(path: ConfigPath, limit: int = 160) -> str:
    """`('consumers', 1, 'queue')` -> `consumers[1].queue`, quoting keys that need it.

    Keys are shortened as values are (see shorten), and a path longer than `limit` keeps its
    entry (`queues[3]`) and as many of its last parts as fit, so that whatever the keys, a
    path in a message stays a few dozen characters.
    """
    pieces: list[str] = []
    for part in path:
        if isinstance(part, int):
            pieces.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part) and len(part) <= 40:
            pieces.append(f".{part}" if pieces else part)
        else:
            pieces.append("[" + _quote(part) + "]")
    text = "".join(pieces)
    if len(text) <= limit or len(pieces) <= 3:
        return text or "(top level)"
    head, tail = "".join(pieces[:2]), pieces[-1]
    for piece in reversed(pieces[2:-1]):
        if len(head) + len(piece) + len(tail) >= limit:
            break
        tail = piece + tail
    return f"{head}…{tail.removeprefix('.')}"


def _quote(key: str) -> str:
    """A key as a quoted string: quotes and backslashes escaped, unprintable characters escaped,
    a long key shortened."""
    return '"' + shorten(key.replace("\\", "\\\\").replace('"', '\\"'), 40) + '"'


def error(
    code: str,
    message: str,
    at: Span | Anchor | None,
    path: ConfigPath | None = None,
    *,
    hints: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Diagnostic:
    """An error whose message starts with the config path it concerns, when there is one.

    `at` is a span, or an anchor to place at the end of the build (whose path is the
    diagnostic's unless `path` says otherwise).
    """
    return _make(Severity.ERROR, code, message, at, path, hints, notes)


def warning(
    code: str,
    message: str,
    at: Span | Anchor | None,
    path: ConfigPath | None = None,
    *,
    hints: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Diagnostic:
    return _make(Severity.WARNING, code, message, at, path, hints, notes)


def _make(
    severity: Severity,
    code: str,
    message: str,
    at: Span | Anchor | None,
    path: ConfigPath | None,
    hints: tuple[str, ...],
    notes: tuple[str, ...],
) -> Diagnostic:
    assert code in CODES, f"undocumented diagnostic code {code}"
    anchor = at if isinstance(at, Anchor) else None
    if path is None and anchor is not None:
        path = anchor.path
    if path is not None:
        message = f"{format_path(path)}: {message}"
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        span=at if isinstance(at, Span) else None,
        path=path,
        hints=hints,
        notes=notes,
        anchor=anchor,
    )


_TABLE = (
    # YAML: reading the file.
    Code("E001", "yaml-syntax", "The file is not valid YAML."),
    Code("E002", "duplicate-key", "A mapping names the same key twice; YAML 1.1 tools silently keep the last one."),
    Code(
        "E003",
        "yaml-1.1-ambiguity",
        "A plain scalar that YAML 1.1 (PyYAML) and YAML 1.2 (editors, this tool) read differently, "
        "such as `no`, `on`, `0755` or `1:30`.",
    ),
    Code("E004", "non-string-key", "A mapping key that is a number, boolean or null instead of a name."),
    Code(
        "E005",
        "unsupported-yaml",
        "A YAML feature the config cannot use: a custom tag, a recursive alias, `.inf`/`.nan`.",
    ),
    Code("E006", "document-structure", "The file is empty, or holds more than one YAML document."),
    Code("E007", "encoding", "The file is not UTF-8 text."),
    Code(
        "E008",
        "input-limit",
        "The file exceeds a documented limit of the reader: its size, its nesting depth, or its number of values.",
    ),
    Code(
        "E009",
        "unsafe-character",
        "A key or value holds a control, format or bidi-override character (NUL, ESC, U+202E, ...), "
        "which no name needs and which can forge or hide text in logs.",
    ),
    # Schema: shape of the configuration.
    Code("E101", "unknown-key", "A key the configuration does not know; often a misspelling."),
    Code("E102", "missing-key", "A required key is absent."),
    Code("E103", "wrong-type", "A value of the wrong type, such as a quoted number."),
    Code("E104", "out-of-range", "A number outside the range the field (or AMQP) allows."),
    Code("E105", "not-an-option", "A value that is not one of the allowed choices."),
    Code("E106", "bad-format", "A string in the wrong format, such as a malformed `module:Class`."),
    Code("E107", "empty", "An empty list or string where at least one item or character is needed."),
    Code("E199", "schema", "Any other schema violation."),
    # Imports and the consumer contract.
    Code("E201", "module-not-found", "The module of a `module:attr` reference cannot be found."),
    Code("E202", "module-import-failed", "The module exists but raised an exception while being imported."),
    Code("E203", "attribute-not-found", "The module has no attribute of that name."),
    Code("E204", "wrong-kind", "A consumer that is not a class, or a startup handler that is not callable."),
    Code("E205", "not-constructible", "A consumer class that cannot be created without arguments, or is abstract."),
    Code("E206", "missing-method", "A consumer class without `consume` or `shutdown`."),
    Code(
        "E207",
        "incompatible-signature",
        "`consume`, `shutdown` or the startup handler cannot be called the way the runtime calls it.",
    ),
    Code("E208", "import-timeout", "Importing the configured modules did not finish in time."),
    # What RabbitMQ would refuse at declare time.
    Code("E301", "reserved-name", "A name RabbitMQ reserves: the `amq.` prefix, or the default exchange."),
    Code("E302", "name-too-long", "A queue, exchange or routing key longer than 255 bytes (an AMQP short string)."),
    Code("E303", "declared-twice", "A queue or exchange declared more than once."),
    Code(
        "E305", "queue-type-property", "A quorum or stream queue that is not durable, or is exclusive or auto-delete."
    ),
    Code("E306", "argument-not-supported", "A queue argument that the queue's type refuses."),
    Code("E307", "argument-conflict", "Queue arguments that contradict each other or are given twice."),
    Code("E308", "stream-prefetch", "A consumer of a stream queue with prefetch_count 0; streams need a prefetch."),
    Code(
        "E309",
        "error-policy",
        "An error policy that cannot work: retry settings without on_error: retry, a quorum delivery limit "
        "below max_attempts, or a retry queue whose name is taken or too long.",
    ),
    # Warnings: legal, but probably not what was meant. `--strict` makes them fail the build.
    Code("W401", "idle-instances", "prefetch_count is below consumer_count, so some instances never get a message."),
    Code(
        "W402", "undeclared-queue", "A consumer reads a queue that `queues[]` does not declare; it must already exist."
    ),
    Code("W403", "unknown-argument", "A queue argument RabbitMQ does not know; it is accepted and ignored."),
    Code("W404", "passive-ignores", "Settings on a passive declaration, which only checks that the entity exists."),
    Code(
        "W405",
        "undeclared-dead-letter-exchange",
        "A dead-letter exchange that is not declared; dead-lettered messages are dropped if it does not exist.",
    ),
    Code(
        "W406",
        "rejected-messages-dropped",
        "on_error: reject on a queue without a dead-letter exchange: failed messages are dropped.",
    ),
    Code(
        "W407",
        "delivery-limit-drops",
        "on_error: requeue on a quorum queue without a dead-letter exchange: RabbitMQ 4.0 and later drop a "
        "message after 20 failed deliveries.",
    ),
    Code(
        "W408",
        "undeclared-exchange",
        "A binding names an exchange that the config neither declares nor RabbitMQ predeclares: the service "
        "cannot start unless another service has created it.",
    ),
    Code(
        "W409",
        "legacy-empty-argument",
        "A legacy `x_*` queue key set to an empty or zero value, which the original amqp-dispatcher never sent; "
        "it is not sent now either.",
    ),
)

CODES: dict[str, Code] = {entry.code: entry for entry in _TABLE}
