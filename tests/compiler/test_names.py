"""RabbitMQ's rules on names hold wherever a name appears, not only where it is declared.

Property: an over-long name (more than 255 bytes of UTF-8) put in any place a queue, exchange
or routing key appears is reported there, at that path; and a reserved `amq.` name put in any
place where the service would declare or consume a queue is refused there.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.compiler import model, rules, source
from amqp_dispatcher.compiler.diagnostics import Diagnostic, format_path

LONG = "x" * 300  # placeholder in the template, replaced by the generated name


def template() -> dict[str, Any]:
    return {
        "consumers": [
            {
                "consumer": "consumers:Consumer",
                "queue": "work",
                "on_error": "retry",
                "retry": {"parking_queue": "work.parked", "delays": [1]},
            },
            {"consumer": "consumers:Consumer", "queue": "elsewhere"},
        ],
        "exchanges": [{"exchange": "events", "arguments": {"alternate-exchange": "unrouted"}}],
        "queues": [
            {
                "queue": "work",
                "x_dead_letter_exchange": "dead",
                "x_dead_letter_routing_key": "work.dead",
                "bindings": [{"exchange": "events", "routing_key": "work"}],
            },
            {"queue": "other", "arguments": {"x-dead-letter-exchange": "dead"}},
        ],
    }


# (path, whether an `amq.` name is refused there)
PLACES: list[tuple[tuple[str | int, ...], bool]] = [
    (("exchanges", 0, "exchange"), True),
    (("exchanges", 0, "arguments", "alternate-exchange"), False),
    (("queues", 0, "queue"), True),
    (("queues", 0, "x_dead_letter_exchange"), False),
    (("queues", 0, "x_dead_letter_routing_key"), False),
    (("queues", 0, "bindings", 0, "exchange"), False),
    (("queues", 0, "bindings", 0, "routing_key"), False),
    (("queues", 1, "arguments", "x-dead-letter-exchange"), False),
    (("consumers", 0, "retry", "parking_queue"), True),
    (("consumers", 1, "queue"), True),
]


def put(document: dict[str, Any], path: tuple[str | int, ...], value: str) -> None:
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def diagnose(document: dict[str, Any]) -> list[Diagnostic]:
    loaded, found = source.load(yaml.safe_dump(document, allow_unicode=True, width=10_000))
    assert loaded is not None and not found
    return rules.check(model.build(loaded, set(), "0" * 64))


NAME_CHARACTERS = st.characters(
    min_codepoint=0x21, max_codepoint=0x2FFF, exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]
)
OVER_LONG = st.text(NAME_CHARACTERS, min_size=86, max_size=300).filter(lambda text: len(text.encode()) > 255)


@settings(max_examples=60, deadline=None)
@given(place=st.sampled_from(PLACES), name=OVER_LONG)
def test_an_over_long_name_is_reported_wherever_it_appears(
    place: tuple[tuple[str | int, ...], bool], name: str
) -> None:
    path, _ = place
    document = template()
    put(document, path, name)
    reported = {(d.code, d.path) for d in diagnose(document)}
    assert ("E302", path) in reported, f"nothing said of {format_path(path)}: {sorted(reported, key=str)}"


# RabbitMQ's own exchanges: an exchange may carry these names, a queue never.
PREDECLARED = ("direct", "fanout", "topic", "headers", "match")


@settings(max_examples=60, deadline=None)
@given(
    place=st.sampled_from([place for place in PLACES if place[1]]),
    suffix=st.one_of(st.text("abcxyz.-", min_size=1), st.sampled_from(PREDECLARED)),
    passive=st.booleans(),
)
def test_a_reserved_name_is_refused_wherever_the_service_would_declare_or_consume_it(
    place: tuple[tuple[str | int, ...], bool], suffix: str, passive: bool
) -> None:
    path, _ = place
    document = template()
    put(document, path, f"amq.{suffix}")
    if passive and path[0] in ("exchanges", "queues"):
        put(document, (*path[:-1], "passive"), True)
    reported = {(d.code, d.path) for d in diagnose(document)}
    refused = ("E301", path) in reported
    if path[0] == "exchanges" and suffix in PREDECLARED:
        assert not refused, "RabbitMQ's own exchanges may be named (and checked)"
    else:
        assert refused, f"nothing said of {format_path(path)}: {sorted(reported, key=str)}"


def test_names_within_the_rules_raise_nothing() -> None:
    assert not [d for d in diagnose(template()) if d.code in ("E301", "E302")]


@pytest.mark.parametrize(
    "key,value",
    [
        ("x_dead_letter_exchange", ""),
        ("x_dead_letter_routing_key", ""),
        ("x_max_length", 0),
        ("x_message_ttl", 0),
    ],
)
def test_an_empty_or_zero_legacy_key_is_not_sent_and_says_so(key: str, value: object) -> None:
    """As the original did: it sent an x_ key only when it was truthy."""
    document = template()
    document["queues"].append({"queue": "plain", key: value})
    loaded, _ = source.load(yaml.safe_dump(document))
    assert loaded is not None
    built = model.build(loaded, set(), "0" * 64)
    queue = next(entry.spec for entry in built.queues if entry.spec.name == "plain")
    assert dict(queue.arguments) == {}
    warnings = [d for d in rules.check(built) if d.code == "W409"]
    assert [d.path for d in warnings] == [("queues", 2, key)]
    assert f"write it under arguments: {{{key.replace('_', '-')}: " in warnings[0].hints[0]
