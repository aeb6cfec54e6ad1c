"""Python literals for generated code: exact, injection-proof, and already in ruff's format.

Owns turning config values (strings, numbers, booleans, None, lists, dicts, tuples, and the
runtime's frozen spec objects as keyword calls) into source text. Strings are escaped
character by character, so no value can end a literal early; collections are written one item
per line with a trailing comma, which ruff format keeps as it is. Knows nothing of templates
or of what the values mean.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

INDENT = "    "
_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(value: Any, depth: int = 0) -> str:
    """The source text of `value`, for a position indented `depth` levels."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value!r} as a literal")
        return repr(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, dict):
        items = [f"{string(_key(key))}: {literal(item, depth + 1)}" for key, item in value.items()]
        return _collection("{", items, "}", depth)
    if isinstance(value, list):
        return _collection("[", [literal(item, depth + 1) for item in value], "]", depth)
    if isinstance(value, tuple):
        return _collection("(", [literal(item, depth + 1) for item in value], ")", depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [
            f"{field.name}={literal(getattr(value, field.name), depth + 1)}" for field in dataclasses.fields(value)
        ]
        return _collection(f"{type(value).__name__}(", fields, ")", depth)
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def string(text: str) -> str:
    """A string literal in ruff's style: double quotes unless the text holds more of them."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join(_escape(char, quote) for char in text)
    return f"{quote}{body}{quote}"


def _escape(char: str, quote: str) -> str:
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char]
    if char == quote:
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _collection(opening: str, items: list[str], closing: str, depth: int) -> str:
    if not items:
        return opening + closing
    inner = INDENT * (depth + 1)
    lines = "".join(f"{inner}{item},\n" for item in items)
    return f"{opening}\n{lines}{INDENT * depth}{closing}"


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
    return key
