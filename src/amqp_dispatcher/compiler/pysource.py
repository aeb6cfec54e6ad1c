"""Python literals for generated code: exact, injection-proof, and already in ruff's format.

Owns turning config values (strings, numbers, booleans, None, lists, mappings, tuples, and the
runtime's frozen spec objects as keyword calls) into source text. Strings are escaped
character by character, so no value can end a literal early; collections are written one item
per line with a trailing comma, which ruff format keeps as it is. A `module:name` reference is
written as the name it is imported as, and an object may carry a comment line above it. Knows
nothing of templates or of what the values mean.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

from .refs import ImportRef

INDENT = "    "
_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(
    value: Any,
    depth: int = 0,
    *,
    names: Mapping[ImportRef, str] | None = None,
    comments: Mapping[int, str] | None = None,
) -> str:
    """The source text of `value`, for a position indented `depth` levels.

    `names` gives the name each reference is imported as; `comments` a comment line to write
    above an object, by the object's id (two equal objects may need different comments).
    """
    return _Writer(names or {}, comments or {}).literal(value, depth)


def class_names(value: Any) -> set[str]:
    """The names of the classes a literal of `value` calls (references are names, not calls)."""
    return {type(item).__name__ for item in _objects(value)}


class _Writer:
    def __init__(self, names: Mapping[ImportRef, str], comments: Mapping[int, str]) -> None:
        self.names = names
        self.comments = comments

    def literal(self, value: Any, depth: int) -> str:
        if isinstance(value, ImportRef):
            return self.names[value]
        if isinstance(value, Mapping):
            items = [f"{string(_key(key))}: {self.literal(item, depth + 1)}" for key, item in value.items()]
            return _collection("{", items, "}", depth)
        if isinstance(value, list | tuple):
            opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
            return _collection(opening, [self._item(item, depth + 1) for item in value], closing, depth)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = [
                f"{field.name}={self.literal(getattr(value, field.name), depth + 1)}"
                for field in dataclasses.fields(value)
            ]
            return _collection(f"{type(value).__name__}(", fields, ")", depth)
        return _scalar(value)

    def _item(self, value: Any, depth: int) -> str:
        """An item of a sequence, after its comment line if it has one."""
        text = self.literal(value, depth)
        comment = self.comments.get(id(value))
        return text if comment is None else f"# {comment}\n{INDENT * depth}{text}"


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value!r} as a literal")
        return repr(value)
    if isinstance(value, str):
        return string(value)
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def _objects(value: Any) -> Iterator[Any]:
    """Every dataclass object in `value`, references aside, depth first."""
    if isinstance(value, Mapping):
        items: Any = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type | ImportRef):
        yield value
        items = [getattr(value, field.name) for field in dataclasses.fields(value)]
    else:
        return
    for item in items:
        yield from _objects(item)


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
