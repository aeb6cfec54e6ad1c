"""Printing diagnostics: as compiler text with a source snippet, as JSON, or as GitHub annotations.

Owns the three output formats and the summary line, and what may reach a terminal or a log:
every unprintable character is escaped (the snippet's caret measured on the escaped text), a
long source line is shown as a window around the caret, and no printed line exceeds
`MAX_LINE` characters, whatever a stage put in a message. Knows nothing of how the
diagnostics were found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from amqp_dispatcher.runtime.logs import safe

from .diagnostics import Diagnostic, Severity, Span, format_path

FORMATS = ("text", "json", "github")
JSON_FORMAT_VERSION = 1
# Stages shorten the values they echo; this is the backstop for any that does not.
MAX_LINE = 360
_SOURCE_WIDTH = 200  # characters of a source line shown around the caret
_SOURCE_LEAD = 60  # of which at most this many before the caret, when the line is cut
_ELLIPSIS = "…"
# The line breaks YAML counts lines by; str.splitlines() also breaks at \f, \v and more.
_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def text(diagnostics: Sequence[Diagnostic], file: str, source: str | None) -> str:
    """rustc-style: `file:line:col: error[CODE]: message`, the line with a caret, then hints."""
    lines = _YAML_LINE_BREAK.split(source) if source is not None else []
    if lines and not lines[-1]:  # the break that ends the last line starts no line
        lines.pop()
    blocks = [_text_block(diagnostic, file, lines) for diagnostic in diagnostics]
    return "\n".join(blocks)


def _text_block(diagnostic: Diagnostic, file: str, lines: list[str]) -> str:
    span = diagnostic.span
    where = f"{file}:{span.line}:{span.column}" if span else file
    header = _line(f"{where}: {diagnostic.severity.value}[{diagnostic.code}]: {diagnostic.message}")
    gutter = len(str(span.line)) if span else 1
    pad = " " * gutter
    out = [header]
    if span and 0 < span.line <= len(lines):
        shown, caret = _snippet(lines[span.line - 1], span)
        out += [f"{pad} |", f"{span.line} | {shown}", f"{pad} | {caret}"]
    for label, items in (("hint", diagnostic.hints), ("note", diagnostic.notes)):
        for item in items:
            out.append(_labelled(pad, label, item))
    return "\n".join(out) + "\n"


def _snippet(source_line: str, span: Span) -> tuple[str, str]:
    """The source line as shown, and the carets under the span's part of it.

    Unprintable characters are shown escaped, so the caret counts columns of the escaped text.
    A line too long to show whole is cut around the caret, with … where it is cut.
    """
    start = min(max(span.column - 1, 0), len(source_line))
    if span.end_line == span.line and span.end_column > span.column:
        end = max(min(span.end_column - 1, len(source_line)), start)
    else:
        end = len(source_line.rstrip())
    low, high = _window(source_line, start)
    opening = _ELLIPSIS if low > 0 else ""
    closing = _ELLIPSIS if high < len(source_line) else ""
    shown = opening + safe(source_line[low:high]) + closing
    indent = len(opening) + len(safe(source_line[low:start]))
    width = len(safe(source_line[start : min(end, high)]))
    return shown, " " * indent + "^" * max(width, 1)


def _window(source_line: str, start: int) -> tuple[int, int]:
    """The characters [low, high) of the line to show: at most _SOURCE_WIDTH columns once
    escaped, and when the line is longer, about _SOURCE_LEAD of them before the caret."""

    def columns(char: str) -> int:
        return len(safe(char))

    low = high = start
    used = 0
    while low > 0 and used + columns(source_line[low - 1]) <= _SOURCE_LEAD:
        low -= 1
        used += columns(source_line[low])
    while high < len(source_line) and used + columns(source_line[high]) <= _SOURCE_WIDTH:
        used += columns(source_line[high])
        high += 1
    while low > 0 and used + columns(source_line[low - 1]) <= _SOURCE_WIDTH:  # room left near the end
        low -= 1
        used += columns(source_line[low])
    return low, high


def _labelled(pad: str, label: str, body: str) -> str:
    first, *rest = safe(body, keep_newlines=True).splitlines() or [""]
    lead = f"{pad} = {label}: "
    continuation = " " * len(lead)
    return "\n".join([_line(lead + first), *(_line(continuation + line) if line else "" for line in rest)])


def _line(text: str) -> str:
    """One printed line: escaped, and cut in the middle if it is longer than MAX_LINE."""
    text = safe(text)
    if len(text) <= MAX_LINE:
        return text
    cut = f" {_ELLIPSIS} ({len(text) - MAX_LINE + 40:,} characters cut) {_ELLIPSIS} "
    head = (MAX_LINE - len(cut)) * 2 // 3
    return text[:head] + cut + text[len(text) - (MAX_LINE - len(cut) - head) :]


def _lines(text: str) -> str:
    """Multi-line text (a traceback) with each line made safe as by _line."""
    return "\n".join(_line(line) for line in text.split("\n"))


def summary(diagnostics: Sequence[Diagnostic], file: str) -> str:
    errors = sum(1 for diagnostic in diagnostics if diagnostic.is_error)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{file}: {', '.join(parts) or 'no problems'}"


def as_json(diagnostics: Sequence[Diagnostic], file: str) -> str:
    """A versioned document; fields are only ever added within a format version."""
    errors = sum(1 for diagnostic in diagnostics if diagnostic.is_error)
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "file": file,
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": len(diagnostics) - errors,
        "diagnostics": [_json_entry(diagnostic, file) for diagnostic in diagnostics],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _json_entry(diagnostic: Diagnostic, file: str) -> dict[str, object]:
    span = diagnostic.span
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "message": _line(diagnostic.message),
        "path": format_path(diagnostic.path) if diagnostic.path is not None else None,
        "file": file,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_column if span else None,
        "hints": [_lines(hint) for hint in diagnostic.hints],
        "notes": [_lines(note) for note in diagnostic.notes],
    }


def github(diagnostics: Sequence[Diagnostic], file: str) -> str:
    """GitHub workflow commands (`::error file=...::message`), one per diagnostic."""
    out = []
    for diagnostic in diagnostics:
        command = "error" if diagnostic.severity is Severity.ERROR else "warning"
        properties = [f"file={_property(file)}"]
        span = diagnostic.span
        if span:
            properties += [f"line={span.line}", f"col={span.column}"]
            properties += [f"endLine={span.end_line}", f"endColumn={span.end_column}"]
        properties.append(f"title={_property(diagnostic.code)}")
        body = "\n".join([_line(diagnostic.message), *(_lines(f"hint: {hint}") for hint in diagnostic.hints)])
        out.append(f"::{command} {','.join(properties)}::{_data(body)}")
    return "\n".join(out)


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")
