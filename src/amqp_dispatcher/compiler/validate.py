"""Schema validation: every way the data breaks the JSON Schema, as positioned diagnostics.

The only importer of jsonschema. Owns the E1xx codes, and which of the reader's YAML 1.1
ambiguities (E003) are worth saying: not those under an unknown key. Points each problem where
a person looks for it, as yaml-language-server does: an unknown key on the key (with "did you
mean"), a missing key on the object that lacks it, a bad value on the value; and says nothing
of a value the reader already explained (E003, E005, E009), nor of a key "missing" from a
mapping that lost it to an unsafe character. Values and keys are echoed shortened
(diagnostics.shorten), so that a huge scalar never fills the screen. Knows nothing of imports
or RabbitMQ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any

import jsonschema

from amqp_dispatcher.schema import load_schema

from .diagnostics import ConfigPath, Diagnostic, at_key, at_value, closest, did_you_mean, error, shorten
from .refs import IMPORT_REF_PATTERN, explain_bad_ref
from .source import SourceDocument

# Codes of problems with a value, which a problem the reader found in that value explains better.
_VALUE_CODES = {"E103", "E104", "E105", "E106", "E107"}
# A malformed reference longer than this gets the schema's example instead of an explanation,
# which would echo its parts: a value that long is not a typo.
_EXPLAINED_LENGTH = 120
_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(load_schema())


@dataclass(frozen=True, slots=True)
class _Problem:
    """A jsonschema error with the loose types of its fields pinned down."""

    keyword: str
    path: ConfigPath
    schema_path: tuple[str | int, ...]
    schema: dict[str, Any]
    instance: Any
    validator_value: Any

    @classmethod
    def of(cls, problem: jsonschema.ValidationError) -> _Problem:
        schema = problem.schema if isinstance(problem.schema, dict) else {}
        return cls(
            keyword=str(problem.validator),
            path=tuple(part for part in problem.absolute_path if isinstance(part, str | int)),
            schema_path=tuple(part for part in problem.relative_schema_path if isinstance(part, str | int)),
            schema=schema,
            instance=problem.instance,
            validator_value=problem.validator_value,
        )


def validate(document: SourceDocument, reported: Set[ConfigPath]) -> list[Diagnostic]:
    """Schema problems, one diagnostic each, and the YAML 1.1 ambiguities worth saying.

    `reported` holds the paths the reader reported on (an unsupported tag, `.inf`, an unsafe
    character): a schema problem of the same value is left unsaid.
    """
    schema = [found for problem in _validator().iter_errors(document.data) for found in _diagnose(_Problem.of(problem))]
    unknown = {d.path for d in schema if d.code == "E101" and d.path is not None}
    ambiguous = {
        path: diagnostic
        for path, diagnostic in document.ambiguous.items()
        if not any(path[: len(bad)] == bad for bad in unknown)
    }
    explained = set(reported) | document.refused | set(ambiguous)
    # A value of the wrong type is said once: its range or format is beside the point.
    mistyped = {d.path for d in schema if d.code == "E103"}
    schema = [d for d in schema if d.code == "E103" or d.code not in _VALUE_CODES or d.path not in mistyped]
    kept = [d for d in schema if not _is_explained(d, explained, document.incomplete)]
    return kept + list(ambiguous.values())


def _is_explained(diagnostic: Diagnostic, explained: Set[ConfigPath], incomplete: Set[ConfigPath]) -> bool:
    if diagnostic.code in _VALUE_CODES:
        return diagnostic.path in explained
    return diagnostic.code == "E102" and diagnostic.path in incomplete


def _diagnose(problem: _Problem) -> Iterator[Diagnostic]:
    path = problem.path
    keyword = problem.keyword
    if "propertyNames" in problem.schema_path:
        key_path = (*path, problem.instance)
        yield _bad_key(problem, key_path)
    elif keyword == "additionalProperties":
        yield from _unknown_keys(problem, path)
    elif keyword == "required":
        yield from _missing_keys(problem, path)
    elif keyword == "type":
        yield _wrong_type(problem, path)
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        yield _out_of_range(problem, path)
    elif keyword == "enum":
        yield _not_an_option(problem, path)
    elif keyword == "pattern":
        yield _bad_format(problem, path)
    elif keyword in ("minItems", "minLength"):
        what = "list" if keyword == "minItems" else "text"
        hint = (
            "add at least one entry" if keyword == "minItems" else "write a name, or remove the key if it is optional"
        )
        yield error("E107", f"this {what} must not be empty", at_value(path), hints=(hint,))
    else:  # pragma: no cover - the schema uses no other keyword
        yield error("E199", f"breaks the schema rule `{keyword}`", at_value(path))


def _unknown_keys(problem: _Problem, path: ConfigPath) -> Iterator[Diagnostic]:
    known = sorted(problem.schema.get("properties", {}))
    for key in problem.instance:
        if key in known:
            continue
        suggestion = _closest(key, known)
        hints = (did_you_mean(f"`{suggestion}`"),) if suggestion else (f"allowed here: {', '.join(known)}",)
        where = f"in {_describe_object(problem.schema)}"
        message = f"unknown key `{shorten(key)}` {where}"
        yield error("E101", message, at_key((*path, key)), hints=hints)


def _missing_keys(problem: _Problem, path: ConfigPath) -> Iterator[Diagnostic]:
    for key in problem.validator_value:
        if key in problem.instance:
            continue
        description = str(problem.schema["properties"][key]["description"])
        first_sentence = description.split(". ")[0].rstrip(".")
        hints = (f"add `{key}:`, {first_sentence[0].lower()}{first_sentence[1:]}",)
        message = f"missing required key `{key}` in {_describe_object(problem.schema)}"
        yield error("E102", message, at_key(path), hints=hints)


def _wrong_type(problem: _Problem, path: ConfigPath) -> Diagnostic:
    expected = problem.validator_value
    expected_list = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES[name] for name in expected_list)
    value = problem.instance
    hints = _type_hints(expected_list, value) + _hint(problem)
    return error("E103", f"expected {wanted}, got {_describe_value(value)}", at_value(path), hints=hints)


def _type_hints(expected: list[str], value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and "integer" in expected and value.strip().lstrip("-").isdigit():
        return (f"remove the quotes: {shorten(value.strip())}",)
    if isinstance(value, str) and "boolean" in expected and value.lower() in ("true", "false"):
        return (f"remove the quotes: {value.lower()}",)
    if isinstance(value, float) and "integer" in expected and math.isfinite(value):
        below, above = math.floor(value), math.ceil(value)
        return (f"write a whole number, such as {below} or {above}",)
    if value is None:
        return ("give it a value, or remove the key to use the default",)
    if expected == ["string"] and isinstance(value, bool | int | float):
        return (f'quote it: "{shorten(_yaml_text(value))}"',)
    return ()


def _out_of_range(problem: _Problem, path: ConfigPath) -> Diagnostic:
    keyword, limit, value = problem.keyword, problem.validator_value, problem.instance
    shown = shorten(_yaml_text(value))
    if keyword == "maximum":
        message = f"{shown} is above {limit}, the largest {_title(problem)} allowed"
    elif keyword == "minimum":
        message = f"{shown} is below {limit}, the smallest {_title(problem)} allowed"
    else:  # pragma: no cover - the schema uses minimum and maximum only
        message = f"{shown} breaks the limit {keyword} {limit}"
    low, high = problem.schema.get("minimum"), problem.schema.get("maximum")
    hints = _hint(problem) or (
        (f"use a value from {low:,} to {high:,}",) if low is not None and high is not None else ()
    )
    return error("E104", message, at_value(path), hints=hints)


def _not_an_option(problem: _Problem, path: ConfigPath) -> Diagnostic:
    options = [option for option in problem.validator_value if option is not None]
    shown = ", ".join(str(option) for option in options)
    value = problem.instance
    message = f"{_quoted(value)} is not a {_title(problem)}: expected one of {shown}"
    suggestion = _closest(str(value), [str(option) for option in options])
    hints = (did_you_mean(f"`{suggestion}`"),) if suggestion else ()
    return error("E105", message, at_value(path), hints=hints)


def _bad_format(problem: _Problem, path: ConfigPath) -> Diagnostic:
    value = problem.instance
    is_ref = problem.validator_value == IMPORT_REF_PATTERN and len(str(value)) <= _EXPLAINED_LENGTH
    explanation = explain_bad_ref(str(value)) if is_ref else None
    expected = problem.schema.get("patternErrorMessage", f"does not match {problem.validator_value}")
    message = f"{_quoted(value)}: {explanation or expected}"
    suggestion = _closest(str(value), [str(example) for example in problem.schema.get("examples", [])])
    hints = (expected,) if explanation else (did_you_mean(f"`{suggestion}`"),) if suggestion else _hint(problem)
    return error("E106", message, at_value(path), hints=hints)


def _bad_key(problem: _Problem, path: ConfigPath) -> Diagnostic:
    key = path[-1]
    if problem.keyword == "pattern":
        expected = problem.schema.get("patternErrorMessage", f"keys must match {problem.validator_value}")
        hints = (f"write x-{shorten(str(key).lstrip('-_'))}",) if str(problem.validator_value) == "^x-" else ()
        message = f"`{shorten(str(key))}` is not a valid key here: {expected}"
        return error("E106", message, at_key(path), hints=hints)
    return error("E107", "keys must not be empty", at_key(path), hints=("give the key a name",))


def _hint(problem: _Problem) -> tuple[str, ...]:
    hint = problem.schema.get("x-hint")
    return (hint,) if hint else ()


def _title(problem: _Problem) -> str:
    return str(problem.schema.get("title", "value"))


def _describe_object(schema: dict[str, Any]) -> str:
    if "$schema" in schema:
        return "the top level"
    title = str(schema.get("title", "mapping"))
    return f"an {title}" if title[0] in "aeiou" else f"a {title}"


def _describe_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{shorten(value)}" (a string)'
    if isinstance(value, bool) or value is None:
        return _yaml_text(value)
    if isinstance(value, int | float):
        return shorten(repr(value))
    return "a list" if isinstance(value, list) else "a mapping"


def _quoted(value: Any) -> str:
    return f'"{shorten(value)}"' if isinstance(value, str) else _describe_value(value)


def _yaml_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _closest(word: str, candidates: list[str]) -> str | None:
    """Keys and options as people misspell them: case and `-` for `_` do not count."""
    return closest(word, candidates, fold=lambda text: text.replace("-", "_").lower())
