"""Printing diagnostics: as compiler text with a source snippet, as JSON, or as GitHub annotations.

Owns the three output formats and the summary line. Knows nothing of how the diagnostics
were found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .diagnostics import Diagnostic, Severity, Span, format_path

FORMATS = ("text", "json", "github")
JSON_FORMAT_VERSION = 1


def text(diagnostics: Sequence[Diagnostic], file: str, source: str | None) -> str:
    """rustc-style: `file:line:col: error[CODE]: message`, the line with a caret, then hints."""
    lines = source.splitlines() if source is not None else []
    blocks = [_text_block(diagnostic, file, lines) for diagnostic in diagnostics]
    return "\n".join(blocks)


def _text_block(diagnostic: Diagnostic, file: str, lines: list[str]) -> str:
    span = diagnostic.span
    where = f"{file}:{span.line}:{span.column}" if span else file
    header = f"{where}: {diagnostic.severity.value}[{diagnostic.code}]: {diagnostic.message}"
    gutter = len(str(span.line)) if span else 1
    pad = " " * gutter
    out = [header]
    if span and 0 < span.line <= len(lines):
        source_line = lines[span.line - 1]
        out += [f"{pad} |", f"{span.line} | {source_line}", f"{pad} | {_caret(source_line, span)}"]
    for label, items in (("hint", diagnostic.hints), ("note", diagnostic.notes)):
        for item in items:
            out.append(_labelled(pad, label, item))
    return "\n".join(out) + "\n"


def _caret(source_line: str, span: Span) -> str:
    """Spaces (tabs kept, so they line up) up to the column, then ^ under the span's first line."""
    start = max(span.column - 1, 0)
    prefix = "".join(char if char == "\t" else " " for char in source_line[:start])
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    else:
        width = max(len(source_line.rstrip()) - start, 1)
    return prefix + "^" * width


def _labelled(pad: str, label: str, body: str) -> str:
    first, *rest = body.splitlines() or [""]
    lead = f"{pad} = {label}: "
    continuation = " " * len(lead)
    return "\n".join([lead + first, *(continuation + line if line else "" for line in rest)])


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
        "message": diagnostic.message,
        "path": format_path(diagnostic.path) if diagnostic.path is not None else None,
        "file": file,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_column if span else None,
        "hints": list(diagnostic.hints),
        "notes": list(diagnostic.notes),
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
        body = "\n".join([diagnostic.message, *(f"hint: {hint}" for hint in diagnostic.hints)])
        out.append(f"::{command} {','.join(properties)}::{_data(body)}")
    return "\n".join(out)


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")
