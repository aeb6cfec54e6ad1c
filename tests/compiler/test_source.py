"""Reading YAML: YAML 1.2 values, positions for every path, and the surprises it refuses."""

from __future__ import annotations

import pytest

from amqp_dispatcher.compiler.source import load


def data(text: str) -> object:
    document, diagnostics = load(text)
    assert document is not None and not diagnostics and not document.ambiguous, diagnostics
    return document.data


@pytest.mark.parametrize(
    "text,value",
    [
        ("a: true", True),
        ("a: False", False),
        ("a: ~", None),
        ("a:", None),
        ("a: null", None),
        ("a: 12", 12),
        ("a: -3", -3),
        ("a: 0x1F", 31),
        ("a: 1.5", 1.5),
        ("a: 2024-01-01", "2024-01-01"),
        ("a: '0755'", "0755"),
        ('a: "no"', "no"),
        ("a: !!str 12", "12"),
        ("a: !!int '7'", 7),
        ("a: !!float 1", 1.0),
        ("a: hello world", "hello world"),
    ],
)
def test_values_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    assert data(text) == {"a": value}


@pytest.mark.parametrize(
    "plain,read_by_us,read_by_pyyaml",
    [
        ("yes", '"yes"', "true"),
        ("No", '"No"', "false"),
        ("on", '"on"', "true"),
        ("OFF", '"OFF"', "false"),
        ("0755", "755", "493"),
        ("1:30", '"1:30"', "90"),
        ("1_000", '"1_000"', "1000"),
        ("1e3", "1000.0", '"1e3"'),
        ("0o17", "15", '"0o17"'),
        ("0b101", '"0b101"', "5"),
    ],
)
def test_plain_scalars_yaml_1_1_reads_differently_are_reported(
    plain: str, read_by_us: str, read_by_pyyaml: str
) -> None:
    document, diagnostics = load(f"a: {plain}")
    assert document is not None and not diagnostics
    ambiguity = document.ambiguous[("a",)]
    assert ambiguity.code == "E003"
    assert f"`{plain}` is read as" in ambiguity.message
    assert ambiguity.span is not None and (ambiguity.span.line, ambiguity.span.column) == (1, 4)


def test_quoted_scalars_are_never_ambiguous() -> None:
    assert data("a: 'yes'\nb: \"0755\"\nc: '1:30'") == {"a": "yes", "b": "0755", "c": "1:30"}


def test_positions_point_at_keys_and_values() -> None:
    document, _ = load("consumers:\n  - consumer: a:B\n    queue:   orders\n")
    assert document is not None
    located = document.positions[("consumers", 0, "queue")]
    assert located.key is not None and (located.key.line, located.key.column) == (3, 5)
    assert (located.value.line, located.value.column, located.value.end_column) == (3, 14, 20)
    assert document.key_span(("consumers", 0)) == document.positions[("consumers", 0)].value


def test_aliases_and_merge_keys_expand_with_own_keys_winning() -> None:
    text = (
        "base: &base {queue: orders, prefetch_count: 5}\nconsumers:\n  - <<: *base\n    prefetch_count: 9\n  - *base\n"
    )
    assert data(text) == {
        "base": {"queue": "orders", "prefetch_count": 5},
        "consumers": [{"prefetch_count": 9, "queue": "orders"}, {"queue": "orders", "prefetch_count": 5}],
    }


def test_a_merge_of_something_else_than_a_mapping_is_an_error() -> None:
    _, diagnostics = load("a:\n  <<: [1, 2]\n")
    assert [d.code for d in diagnostics] == ["E005", "E005"]


def test_duplicate_keys_are_errors_that_name_the_first() -> None:
    _, diagnostics = load("a: 1\nb: 2\na: 3\n")
    assert [d.code for d in diagnostics] == ["E002"]
    assert diagnostics[0].notes == ("first defined at line 1, column 1",)


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    document, diagnostics = load("\n".join(lines))
    assert document is None
    assert [d.code for d in diagnostics] == ["E005"]
    assert "more than 1,000,000 values" in diagnostics[0].message


def test_non_finite_numbers_are_refused() -> None:
    _, diagnostics = load("a: .nan\nb: -.inf\n")
    assert [d.code for d in diagnostics] == ["E005", "E005"]
