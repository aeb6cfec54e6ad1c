"""The JSON Schema serves editors and agrees with the compiler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from amqp_dispatcher.compiler import defaults, model
from amqp_dispatcher.compiler.arguments import QUEUE_ARGUMENTS
from amqp_dispatcher.compiler.refs import IMPORT_REF_PATTERN
from amqp_dispatcher.schema import load_schema

SCHEMA = load_schema()
DRAFT_07_KEYWORDS = {
    "$schema",
    "$id",
    "$ref",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "type",
    "enum",
    "const",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "pattern",
    "propertyNames",
    "definitions",
    "uniqueItems",
}
EDITOR_KEYWORDS = {"patternErrorMessage", "enumDescriptions", "defaultSnippets", "markdownDescription"}


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema, with a JSON pointer to it."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("properties", "definitions"):
                for name, child in value.items():
                    yield from walk(child, f"{path}/{key}/{name}")
            elif key in ("items", "additionalProperties", "propertyNames") and isinstance(value, dict):
                yield from walk(value, f"{path}/{key}")


def properties() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, node in walk(SCHEMA):
        for name, child in node.get("properties", {}).items():
            yield f"{path}/properties/{name}", child


def test_is_a_valid_draft_07_schema() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_uses_only_draft_07_keywords_and_editor_extensions() -> None:
    for path, node in walk(SCHEMA):
        unknown = set(node) - DRAFT_07_KEYWORDS - EDITOR_KEYWORDS - {"x-hint"}
        assert not unknown, f"{path} uses {unknown}"
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{path}: draft-07 ignores siblings of $ref"


@pytest.mark.parametrize("path,node", list(properties()), ids=lambda value: value if isinstance(value, str) else "")
def test_every_property_has_a_title_and_a_description(path: str, node: dict[str, Any]) -> None:
    target = node
    if "$ref" in node:
        target = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    assert target.get("title"), f"{path} has no title"
    assert target.get("description"), f"{path} has no description"


def test_every_object_is_closed_or_a_documented_map() -> None:
    for path, node in walk(SCHEMA):
        if node.get("type") != "object":
            continue
        closed = node.get("additionalProperties") is False
        is_map = isinstance(node.get("additionalProperties"), dict) and "propertyNames" in node
        assert closed or is_map, f"{path} accepts unknown keys without saying what they are"


def test_every_enum_has_a_description_per_value() -> None:
    for path, node in walk(SCHEMA):
        if "enum" in node:
            assert len(node.get("enumDescriptions", [])) == len(node["enum"]), path


def test_defaults_and_examples_are_valid_values() -> None:
    for path, node in walk(SCHEMA):
        validator = jsonschema.Draft7Validator({**node, "definitions": SCHEMA["definitions"]})
        for value in [node["default"]] if "default" in node else []:
            assert validator.is_valid(value), f"{path}: default {value!r} is invalid"
        for value in node.get("examples", []):
            assert validator.is_valid(value), f"{path}: example {value!r} is invalid"


@pytest.mark.parametrize(
    "definition,defaults",
    [
        ("#", model.SERVICE_DEFAULTS),
        ("consumer", model.CONSUMER_DEFAULTS),
        ("queue", model.QUEUE_DEFAULTS),
        ("binding", model.BINDING_DEFAULTS),
        ("exchange", model.EXCHANGE_DEFAULTS),
        ("retryPolicy", model.RETRY_DEFAULTS),
        ("http", defaults.HTTP_DEFAULTS),
    ],
)
def test_schema_defaults_are_the_models(definition: str, defaults: dict[str, Any]) -> None:
    node = SCHEMA if definition == "#" else SCHEMA["definitions"][definition]
    documented = {}
    for name, child in node["properties"].items():
        target = SCHEMA["definitions"][child["$ref"].rsplit("/", 1)[1]] if "$ref" in child else child
        if "default" in target:
            documented[name] = target["default"]
    assert documented == dict(defaults)


def test_import_reference_patterns_match_the_compilers() -> None:
    patterns = {node["pattern"] for _, node in walk(SCHEMA) if "module:" in node.get("patternErrorMessage", "")}
    assert patterns == {IMPORT_REF_PATTERN}


def test_known_queue_arguments_are_documented_for_editors() -> None:
    documented = set(SCHEMA["definitions"]["queueArguments"]["properties"])
    assert documented == set(QUEUE_ARGUMENTS)


def test_the_original_example_file_is_valid() -> None:
    """The original README's configuration, unchanged, still passes the schema."""
    original = {
        "consumers": [
            {"consumer": "workers.module:Consumer", "consumer_count": 1, "queue": "test_queue", "prefetch_count": 2},
            {
                "consumer": "workers.module_2:Consumer",
                "consumer_count": 2,
                "queue": "test_queue_2",
                "prefetch_count": 10,
            },
        ],
        "startup_handler": "amqpdispatcher.example_startup:startup",
        "queues": [
            {
                "queue": "test_queue",
                "durable": True,
                "passive": True,
                "x_dead_letter_exchange": None,
                "x_dead_letter_routing_key": None,
                "x_max_length": None,
                "x_expires": None,
                "x_message_ttl": None,
                "bindings": [{"exchange": "amq.direct", "routing_key": "test_queue"}],
            }
        ],
    }
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(original)) == []
