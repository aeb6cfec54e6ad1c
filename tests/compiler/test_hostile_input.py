"""Hostile input: every YAML file gets diagnostics, never an internal error, and what they print is safe.

Properties over generated files: whatever the nesting, size or number of values, the reader
answers with E008 (its limits) or E005 (aliases that expand too far) at the place the limit is
crossed, before it composes a node; whatever the length of a value, no printed line is longer
than a few hundred characters; whatever characters a key or value holds, controls, format and
bidi characters are refused (E009) and nothing unprintable reaches the output.
"""

from __future__ import annotations

import io
import itertools
import json
import tracemalloc
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.compiler import cli, report, source
from amqp_dispatcher.compiler.diagnostics import Diagnostic
from amqp_dispatcher.compiler.pipeline import BuildOptions, BuildResult, build

MODULES = Path(__file__).parent / "artifact"  # consumers:Consumer
LIMITS = source.LIMITS
LONGEST_LINE = 400
HEADER = "consumers: [{consumer: consumers:Consumer, queue: orders}]\n"


def slow(examples: int) -> settings:
    """Settings for properties whose every example builds a config: no deadline, few examples."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def build_text(text: str) -> BuildResult:
    return build(text.encode("utf-8"), "config.yml", BuildOptions(roots=(str(MODULES),)))


def codes(result: BuildResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def only(result: BuildResult, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, result.diagnostics
    return found[0]


def printed(result: BuildResult) -> dict[str, str]:
    """Everything each output format prints for the result."""
    text = report.text(result.diagnostics, result.config_name, result.text)
    return {
        "text": text + "\n" + report.summary(result.diagnostics, result.config_name),
        "json": report.as_json(result.diagnostics, result.config_name),
        "github": report.github(result.diagnostics, result.config_name),
    }


def longest_line(fmt: str, output: str) -> str:
    """The longest line a person reads: GitHub shows an annotation's message and hints (joined
    by %0A after the `::error ...::` command) as lines of their own."""
    lines = output.splitlines()
    if fmt == "github":
        lines = [part for line in lines for part in line.split("::", 2)[-1].split("%0A")]
    return max(lines, key=len, default="")


# --- Limits: nesting -------------------------------------------------------------------------


@dataclass(frozen=True)
class Nested:
    """A file nesting lists and mappings `depth` levels, and where each level starts (line, column)."""

    text: str
    starts: list[tuple[int, int]]


@st.composite
def flow_nesting(draw: st.DrawFn, depth: int) -> Nested:
    """`consumers: [{a: [[...]]}]`: every level on the first line."""
    prefix = "consumers: "
    # A drawn pattern of lists and mappings, repeated to the depth (Hypothesis draws short lists).
    pattern = draw(st.lists(st.sampled_from(["[", "{a: "]), min_size=1, max_size=2 * LIMITS.depth))
    openers = (pattern * (depth // len(pattern) + 1))[: depth - 1]
    starts, column = [(1, 1)], len(prefix) + 1
    for opener in openers:
        starts.append((1, column))
        column += len(opener)
    closers = "".join("]" if opener == "[" else "}" for opener in reversed(openers))
    return Nested(prefix + "".join(openers) + closers + "\n", starts)


def block_mappings(depth: int) -> Nested:
    """`a:` on every line, each one space deeper: the shape PyYAML's composer recursed on."""
    return Nested("".join(" " * level + "a:\n" for level in range(depth)), [(n, n) for n in range(1, depth + 1)])


def block_sequences(depth: int) -> Nested:
    """`- - - - x`: compact nested sequences under the top mapping."""
    text = "consumers:\n" + "- " * (depth - 1) + "x\n"
    return Nested(text, [(1, 1), *((2, 2 * level + 1) for level in range(depth - 1))])


@st.composite
def too_deep(draw: st.DrawFn) -> Nested:
    shape = draw(st.sampled_from(["flow", "block mappings", "block sequences"]))
    if shape == "flow":
        return draw(flow_nesting(draw(st.integers(LIMITS.depth + 1, 20_000))))
    if shape == "block mappings":  # indentation grows with depth: 1,000 levels are 500 KB
        return block_mappings(draw(st.integers(LIMITS.depth + 1, 1_000)))
    return block_sequences(draw(st.integers(LIMITS.depth + 1, 20_000)))


@slow(30)
@given(nested=too_deep())
def test_nesting_past_the_limit_is_e008_where_it_is_crossed(nested: Nested) -> None:
    result = build_text(nested.text)
    assert codes(result) == ["E008"]
    span = result.diagnostics[0].span
    assert span is not None and (span.line, span.column) == nested.starts[LIMITS.depth]
    assert f"more than {LIMITS.depth} levels" in result.diagnostics[0].message


def test_the_issues_ten_thousand_levels_are_e008() -> None:
    result = build_text("consumers: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert codes(result) == ["E008"]
    assert "levels of nesting" in result.diagnostics[0].hints[0]  # the hint names every limit


def argument_value(levels: list[str]) -> str:
    """A flow value nesting lists and mappings as `levels` says, with a number at the bottom."""
    value = "1"
    for level in reversed(levels):
        value = f"[{value}]" if level == "list" else f"{{k: {value}}}"
    return value


@slow(15)
@given(levels=st.lists(st.sampled_from(["list", "map"]), min_size=1, max_size=LIMITS.depth - 4))
def test_a_config_nested_up_to_the_limit_builds(levels: list[str]) -> None:
    """Every stage after the reader recurses: the limit must leave them room at its full depth."""
    # top mapping, queues, the queue, its arguments: four levels before the value
    text = HEADER + f"queues:\n  - queue: orders\n    arguments:\n      x-deep: {argument_value(levels)}\n"
    result = build_text(text)
    assert result.files is not None, result.diagnostics
    assert set(codes(result)) <= {"W403"}


# --- Limits: values, size, aliases -----------------------------------------------------------


@st.composite
def many_values(draw: st.DrawFn) -> str:
    """More values than the limit, as dense as YAML writes them, and no alias anywhere."""
    count = draw(st.integers(LIMITS.values + 1, 250_000))
    shape = draw(st.sampled_from(["flow list", "flow mapping", "block list"]))
    if shape == "flow list":
        return HEADER + "x: [" + ",".join("a" * count) + "]\n"
    if shape == "flow mapping":
        return HEADER + "x: {" + ",".join(f"{n}: 1" for n in range(count // 2 + 1)) + "}\n"
    return HEADER + "x:\n" + "- a\n" * count


@slow(8)
@given(text=many_values())
def test_more_values_than_the_limit_is_e008_and_never_blames_aliases(text: str) -> None:
    result = build_text(text)
    if len(text.encode()) > LIMITS.file_bytes:
        assert codes(result) == ["E008"] and "bytes" in result.diagnostics[0].message
    else:
        assert codes(result) == ["E008"]
        assert f"more than {LIMITS.values:,} values" in result.diagnostics[0].message
    assert not any("alias" in d.message for d in result.diagnostics)


def test_a_file_above_the_size_limit_is_refused_before_it_is_decoded() -> None:
    data = b"\xff" * (LIMITS.file_bytes + 1)  # not UTF-8 either: size is checked first
    result = build(data, "config.yml", BuildOptions(roots=(str(MODULES),)))
    assert codes(result) == ["E008"] and result.diagnostics[0].span is None
    assert f"{LIMITS.file_bytes + 1:,} bytes" in result.diagnostics[0].message
    assert "1,048,576 bytes" in result.diagnostics[0].hints[0]


def test_a_file_at_the_size_limit_is_read() -> None:
    text = HEADER + "#" * (LIMITS.file_bytes - len(HEADER) - 1) + "\n"
    assert len(text.encode()) == LIMITS.file_bytes
    assert build_text(text).files is not None


@slow(20)
@given(fanout=st.integers(2, 12), data=st.data())
def test_aliases_that_expand_past_the_limit_are_e005_at_the_alias(fanout: int, data: st.DataObject) -> None:
    levels = 1
    while fanout ** (levels + 1) <= LIMITS.expanded_values:
        levels += 1
    levels += data.draw(st.integers(1, 3))
    lines = [f"a0: &a0 [{', '.join(['x'] * fanout)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels)]
    result = build_text(HEADER + "\n".join(lines) + "\n")
    diagnostic = only(result, "E005")
    assert codes(result) == ["E005"]
    assert f"aliases expand the file to more than {LIMITS.expanded_values:,} values" in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.line >= 2  # on an alias, not on line 1


@slow(20)
@given(height=st.integers(2, 12), links=st.integers(1, 40))
def test_aliases_that_nest_past_the_depth_limit_are_e008_at_the_alias(height: int, links: int) -> None:
    lines = ["a0: &a0 " + "[" * height + "]" * height]
    lines += [f"a{i}: &a{i} " + "[" * height + f"*a{i - 1}" + "]" * height for i in range(1, links + 1)]
    result = build_text(HEADER + "\n".join(lines) + "\n")
    # a0 sits in the top mapping: each link adds `height` levels to what it names
    deepest = 1 + height * (links + 1)
    if deepest <= LIMITS.depth:
        assert set(codes(result)) == {"E101"}  # a0, a1, ... are no settings; nothing else fires
    else:
        assert codes(result) == ["E008"]
        assert result.diagnostics[0].message.startswith("this alias nests lists and mappings")


def test_aliases_that_stay_within_the_limits_still_build() -> None:
    first = "  - &first {consumer: consumers:Consumer, queue: orders, prefetch_count: 10, consumer_count: 2}\n"
    merged = "  - {<<: *first, prefetch_count: 20}\n" * 300
    aliased = "  - *first\n" * 300
    result = build_text("consumers:\n" + first + merged + aliased)
    assert result.files is not None and not result.diagnostics


WORST_SHAPES: dict[str, Callable[[int], str]] = {
    "deep flow lists": lambda size: "consumers: " + "[" * (size // 2 - 10) + "]" * (size // 2 - 10),
    "deep block mappings": lambda size: block_mappings(1_400).text,
    "dense values": lambda size: "consumers: [" + "a," * (size // 2 - 10) + "a]\n",
    "one huge scalar": lambda size: "name: " + "x" * (size - 100) + "\n" + HEADER,
    "alias bomb": lambda size: (
        HEADER
        + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    ),
}


@pytest.mark.parametrize("shape", sorted(WORST_SHAPES))
def test_a_hostile_file_of_the_largest_size_is_read_in_little_memory(shape: str) -> None:
    text = WORST_SHAPES[shape](LIMITS.file_bytes)
    assert len(text.encode()) <= LIMITS.file_bytes
    tracemalloc.start()
    try:
        result = build_text(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A 1 MiB service name is valid (it is no AMQP short string); every other shape is refused.
    assert (result.files is not None) == (shape == "one huge scalar"), result.diagnostics
    # The text itself is 1 MiB (twice: bytes and str); before the limits, the nodes took a gigabyte.
    assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"


NUMBER_LIKE = st.sampled_from(["", "-", "+", "0x", "0o", "0b", "!!int ", "!!bool ", "!!float ", "!!null "])


@slow(40)
@given(
    prefix=NUMBER_LIKE,
    digits=st.integers(LIMITS.integer_digits - 3, 20_000),
    separator=st.sampled_from(["", "_", ":"]),
    where=st.sampled_from(["prefetch", "argument", "key"]),
)
def test_numbers_of_any_length_get_diagnostics(prefix: str, digits: int, separator: str, where: str) -> None:
    """Python refuses to turn an int of more than 4,300 digits into text: no message may try."""
    number = prefix + (separator.join(["1"] * digits) if separator else "1" * digits)
    consumer = f"  - consumer: consumers:Consumer\n    queue: orders\n    prefetch_count: {number}\n"
    if where == "argument":
        text = HEADER + f"queues:\n  - queue: orders\n    arguments:\n      x-max-length: {number}\n"
    elif where == "key":
        text = HEADER + f"x:\n  ? {number}\n  : 1\n"
    else:
        text = "consumers:\n" + consumer
    result = build_text(text)
    for fmt, output in printed(result).items():
        assert len(longest_line(fmt, output)) < LONGEST_LINE, fmt


# --- Long values are shortened ---------------------------------------------------------------

POSITIONS = (
    "name",
    "consumer ref",
    "consumer queue",
    "queue name",
    "exchange name",
    "binding exchange",
    "routing key",
    "unknown top-level key",
    "unknown consumer key",
    "argument key",
    "argument value",
    "on_error",
    "exchange type",
    "prefetch as quoted digits",
    "parking queue",
    "startup handler",
    "dead-letter exchange",
)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_with(values: dict[str, str]) -> str:
    """A config with each of `values` (position -> text) written where its position says."""

    def at(position: str, default: str) -> str:
        return quoted(values[position]) if position in values else default

    lines = [
        f"name: {at('name', 'shop')}",
        f"startup_handler: {at('startup handler', 'consumers:startup')}",
        "consumers:",
        f"  - consumer: {at('consumer ref', 'consumers:Consumer')}",
        f"    queue: {at('consumer queue', 'orders')}",
        f"    on_error: {at('on_error', 'retry')}",
        f"    prefetch_count: {at('prefetch as quoted digits', '10')}",
        f"    retry: {{parking_queue: {at('parking queue', 'orders.parked')}}}",
    ]
    if "unknown consumer key" in values:
        lines.append(f"    {quoted(values['unknown consumer key'])}: 1")
    lines += [
        "exchanges:",
        f"  - exchange: {at('exchange name', 'shop')}",
        f"    type: {at('exchange type', 'topic')}",
        "queues:",
        f"  - queue: {at('queue name', 'orders')}",
        f"    x_dead_letter_exchange: {at('dead-letter exchange', 'shop')}",
        "    arguments:",
        f"      {quoted('x-' + values['argument key']) if 'argument key' in values else 'x-max-length'}: "
        f"{at('argument value', '100')}",
        "    bindings:",
        f"      - exchange: {at('binding exchange', 'shop')}",
        f"        routing_key: {at('routing key', 'order.*')}",
    ]
    if "unknown top-level key" in values:
        lines.append(f"{quoted(values['unknown top-level key'])}: 1")
    return "\n".join(lines) + "\n"


HUGE = st.builds(
    lambda chunk, length: (chunk * (length // len(chunk) + 1))[:length],
    st.sampled_from(["o", "9", "amq.x", "Order", "a:b", "mod.ule:Cls", "é🐇", "x y", "1.5"]),
    st.integers(5_000, 100_000),
)


@slow(25)
@given(
    values=st.dictionaries(st.sampled_from(POSITIONS), HUGE, min_size=1, max_size=5),
)
def test_huge_values_anywhere_never_print_a_long_line(values: dict[str, str]) -> None:
    result = build_text(config_with(values))  # a huge service name alone is valid: no diagnostics
    # The reader, the schema and the imports shorten what they echo; the report's cap is a backstop.
    for diagnostic in result.diagnostics:
        if diagnostic.code[:2] in ("E0", "E1", "E2"):
            for text in (diagnostic.message, *diagnostic.hints):
                assert len(text) < 300, (diagnostic.code, text[:200])
    for fmt, output in printed(result).items():
        longest = longest_line(fmt, output)
        assert len(longest) < LONGEST_LINE, (fmt, longest[:200])
        assert len(output) < 4_000 * (len(result.diagnostics) + 1), fmt
    assert sum(len(output) for output in printed(result).values()) < 100_000


def test_the_command_line_prints_a_huge_value_shortened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text(config_with({"on_error": "r" * 100_000, "queue name": "q" * 100_000}))
    err = io.StringIO()
    status = cli.run(["config.yml", "-o", "service", "--path", str(MODULES)], stdout=io.StringIO(), stderr=err)
    assert status == 1
    assert len(err.getvalue()) < 10_000
    assert "(100,000 characters)" in err.getvalue()
    assert max(map(len, err.getvalue().splitlines())) < LONGEST_LINE


def test_a_long_source_line_is_shown_as_a_window_around_the_caret() -> None:
    name = "n" * 5_000 + "\u202e" + "m" * 5_000
    result = build_text(HEADER + "y: " + quoted(name) + "  # " + "z" * 3000 + "\n")
    text = printed(result)["text"]
    lines = text.splitlines()
    line, caret = next((a, b) for a, b in itertools.pairwise(lines) if "^" in b and "|" in a)
    snippet, carets = line.split(" | ", 1)[1], caret.split(" | ", 1)[1]
    assert snippet.startswith(("…", "y: "))
    assert snippet.endswith("…") and len(snippet) < 250
    assert len(carets) <= len(snippet)


# --- Unsafe characters -----------------------------------------------------------------------

UNSAFE = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])
SAFE = st.text(st.characters(categories=["L", "N"], max_codepoint=0x2FF), min_size=1, max_size=8)
# libyaml's reader refuses these raw (it allows TAB, LF, NEL and printable characters only)
_RAW_IN_YAML = frozenset("\t")


def yaml_string(text: str, raw: bool) -> str:
    """A double-quoted YAML scalar for `text`: unsafe characters escaped, or raw where YAML allows it."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable() or (raw and _allowed_raw(char)):
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _allowed_raw(char: str) -> bool:
    """What YAML lets a double-quoted scalar hold as it is (and keeps: no line breaks)."""
    code = ord(char)
    if char in _RAW_IN_YAML:
        return True
    category = unicodedata.category(char)
    return category == "Cf" and code != 0xFEFF and (0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code > 0xFFFF)


@st.composite
def unsafe_strings(draw: st.DrawFn) -> str:
    before, after = draw(SAFE), draw(st.text(st.characters(categories=["L", "N", "P"]), max_size=8))
    return before + draw(UNSAFE) + after + draw(st.one_of(st.just(""), UNSAFE))


SLOTS = ("name", "consumer queue", "queue name", "routing key", "argument key", "consumer key", "top-level key")


def config_holding(slot: str, scalar: str) -> tuple[str, int]:
    """A valid config with `scalar` (YAML source) in `slot`, and the line it is written on."""
    lines = ["name: shop", "consumers:", "  - consumer: consumers:Consumer", "    queue: orders"]
    lines += ["queues:", "  - queue: orders", "    arguments: {x-max-length: 5}"]
    lines += ["    bindings:", "      - {exchange: amq.topic, routing_key: a.b}"]
    edits: dict[str, tuple[int, str]] = {
        "name": (0, f"name: {scalar}"),
        "consumer queue": (3, f"    queue: {scalar}"),
        "queue name": (5, f"  - queue: {scalar}"),
        "routing key": (8, f"      - {{exchange: amq.topic, routing_key: {scalar}}}"),
        "argument key": (6, f"    arguments: {{{scalar[:1]}x-{scalar[1:]}: 5}}"),
        "consumer key": (3, f"    {scalar}: orders"),
    }
    if slot == "top-level key":
        lines.append(f"{scalar}: 1")
        return "\n".join(lines) + "\n", len(lines)
    index, line = edits[slot]
    lines[index] = line
    return "\n".join(lines) + "\n", index + 1


def assert_printable(output: str) -> None:
    bad = sorted({char for char in output if not (char.isprintable() or char == "\n")})
    assert not bad, [f"U+{ord(char):04X}" for char in bad]


@slow(120)
@given(slot=st.sampled_from(SLOTS), text=unsafe_strings(), raw=st.booleans())
def test_unsafe_characters_in_names_and_keys_are_e009_and_never_printed(slot: str, text: str, raw: bool) -> None:
    config, line = config_holding(slot, yaml_string(text, raw))
    result = build_text(config)
    assert result.files is None
    diagnostic = only(result, "E009")
    assert diagnostic.span is not None and diagnostic.span.line == line
    first = next(char for char in text if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"))
    assert f"U+{ord(first):04X}" in diagnostic.message
    # The refused value or key explains itself: no schema or cross-entry error piles on.
    assert [d.code for d in result.diagnostics if d.is_error] == ["E009"], result.diagnostics
    for output in printed(result).values():
        assert_printable(output)
    json.loads(printed(result)["json"])


def test_raw_bidi_characters_in_the_source_are_escaped_with_the_caret_in_place() -> None:
    result = build_text("consumers:\n  - consumer: consumers:Consumer\n    queue: 'a\u202eb\u2066c'\n")
    text = printed(result)["text"]
    assert_printable(text)
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("3 | "))
    assert lines[index] == "3 |     queue: 'a\\u202eb\\u2066c'"
    assert lines[index + 1] == "  |            " + "^" * len("'a\\u202eb\\u2066c'")


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\udc00"])
def test_a_lone_surrogate_is_refused_whichever_parser_reads_it(escape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = f'consumers:\n  - consumer: consumers:Consumer\n    queue: "a{escape}"\n'
    result = build_text(text)  # libyaml refuses the escape itself
    assert codes(result) == ["E001"] and "surrogate" in result.diagnostics[0].hints[0]
    assert result.diagnostics[0].span is not None and result.diagnostics[0].span.line == 3
    monkeypatch.setattr(source, "_FastLoader", source._ExactLoader)  # PyYAML without libyaml reads it
    _, diagnostics = source.load(text)
    assert [d.code for d in diagnostics] == ["E009"] and "surrogate" in diagnostics[0].message


def test_an_aliased_unsafe_value_is_reported_once_and_owns_every_path() -> None:
    text = 'q: &q "orders\\u0000"\nconsumers:\n' + "  - {consumer: consumers:Consumer, queue: *q}\n" * 3
    result = build_text(text)
    assert [d.code for d in result.diagnostics if d.is_error] == ["E101", "E009"]  # `q` is no setting


def test_a_key_refused_for_an_unsafe_character_is_not_also_missing() -> None:
    result = build_text('consumers:\n  - consumer: consumers:Consumer\n    "queue\\u200b": orders\n')
    assert codes(result) == ["E009"]
    assert result.diagnostics[0].path == ("consumers", 0, "queue\u200b")


RAW_CONTROLS = st.characters(categories=["Cc", "Zl", "Zp"]).filter(lambda char: char not in "\t\n\r")


@slow(60)
@given(char=RAW_CONTROLS, line=st.integers(1, 4), where=st.sampled_from(["value", "key", "comment"]))
def test_a_control_character_written_raw_is_e009_at_its_place(char: str, line: int, where: str) -> None:
    lines = ["name: shop", "consumers:", "  - consumer: consumers:Consumer", "    queue: orders"]
    text = lines[line - 1]
    if where == "value":
        text = f"{text[:-2]}{char}{text[-2:]}"
    elif where == "key":
        text = text.replace(":", f"{char}:", 1) if line != 3 else text
    else:
        text = f"{text}  # note {char}"
    lines[line - 1] = text
    result = build_text("\n".join(lines) + "\n")
    if char not in text:
        return
    column = text.index(char) + 1
    assert codes(result) == ["E009"], result.diagnostics
    diagnostic = result.diagnostics[0]
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert f"U+{ord(char):04X}" in diagnostic.message
    for output in printed(result).values():
        assert_printable(output)
