"""Reading config.yml: YAML text to plain data, plus where in the file every value came from.

The only importer of yaml. It reads with the YAML 1.2 core schema, as editors do, so that
CI and the editor agree on what the file means. Duplicate keys, non-string keys, custom tags
and recursive aliases are errors, and so is every plain scalar that YAML 1.1 (PyYAML, the
original amqp-dispatcher) reads differently, such as `no`, `on` or `0755`. So is a key or
string holding a control, format or bidi-override character (E009). Owns the reader's limits
(`LIMITS`: file size, nesting depth, number of values, alias expansion, integer length), which
are checked on the event stream before any node is composed, so that no input can exhaust the
stack or the memory of a build (E008). Knows nothing of the schema or of what the keys mean.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    NodeEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Anchor, ConfigPath, Diagnostic, Span, error, shorten

_PLAIN = "tag:amqp-dispatcher,2026:plain"
_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What the reader accepts. Real configs are far below every limit; the limits exist so that
    a hostile or broken file gets a diagnostic quickly instead of a traceback or a gigabyte."""

    # A config of hundreds of consumers is tens of KB. 2,000 consumers, each with its own queue,
    # retry policy, arguments and binding written out in block style, are 750 KB.
    file_bytes: int = 1024 * 1024
    # Lists and mappings inside each other. A real config is about 6 deep (queue arguments can
    # add a few); each level costs stack frames in the recursive stages after the reader
    # (jsonschema takes about 4), so 32 keeps them far from Python's recursion limit.
    depth: int = 32
    # Keys, scalars, lists and mappings as written: those 2,000 consumers are 76,000, about one
    # value per 10 bytes, so real files reach the size limit first; dense hostile ones do not.
    values: int = 100_000
    # The same once aliases are expanded: a few aliased blocks are fine, a billion laughs is not.
    # Building costs about 4 µs and 300 bytes per value, so this bounds a build near 4 s, 300 MB.
    expanded_values: int = 1_000_000
    # Python refuses to print integers of more than 4,300 digits; no setting needs more than 20.
    integer_digits: int = 100


LIMITS = Limits()

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


@dataclass(frozen=True, slots=True)
class Located:
    """Where a value sits: its key (for mapping entries) and the value itself."""

    key: Span | None
    value: Span


@dataclass(slots=True)
class SourceDocument:
    """The parsed config: plain data, the position of every path, and the text for snippets."""

    data: Any
    positions: dict[ConfigPath, Located]
    ambiguous: dict[ConfigPath, Diagnostic] = field(default_factory=dict)
    # Paths of the keys and values the reader refused, reported once where they are written
    # (an unsafe character, E009; an over-long integer, E008), every alias of them included:
    # later stages count them as reported, so that no error cascades from them.
    refused: set[ConfigPath] = field(default_factory=set)
    # Mappings that lost a refused key: a "missing key" there is most likely that key.
    incomplete: set[ConfigPath] = field(default_factory=set)

    def value_span(self, path: ConfigPath) -> Span | None:
        """Where a value is written; for a path with no value, where its nearest parent is."""
        for end in range(len(path), -1, -1):
            located = self.positions.get(path[:end])
            if located is not None:
                return located.value if end == len(path) else (located.key or located.value)
        return None

    def key_span(self, path: ConfigPath) -> Span | None:
        """Where a key is written, or its value's span for list items and the root."""
        located = self.positions.get(path)
        if located is not None and located.key is not None:
            return located.key
        return self.value_span(path)

    def place(self, anchor: Anchor) -> Span | None:
        """Where an anchor points: its own path if written, else the last of its choices."""
        while anchor.otherwise is not None and anchor.path not in self.positions:
            anchor = anchor.otherwise
        return self.key_span(anchor.path) if anchor.part == "key" else self.value_span(anchor.path)


class _Resolver(yaml.resolver.BaseResolver):
    """Marks untagged plain scalars so that we resolve them with YAML 1.2 rules ourselves."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


class _ExactLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    """The pure-Python loader, whose syntax error messages are stable across platforms."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


if yaml.__with_libyaml__:  # libyaml parses large files several times faster
    from yaml._yaml import CParser

    class _FastLoader(CParser, _Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    _FastLoader = _ExactLoader  # type: ignore[misc, assignment]


def check_size(data: bytes, limits: Limits = LIMITS) -> Diagnostic | None:
    """E008 for a file above the size limit, checked on the bytes before anything is decoded."""
    if len(data) <= limits.file_bytes:
        return None
    return error(
        "E008",
        f"the file is {len(data):,} bytes, more than the limit of {limits.file_bytes:,} bytes",
        None,
        hints=(_limits_hint(limits),),
    )


def decode(data: bytes) -> tuple[str | None, Diagnostic | None]:
    """The file's text (a byte order mark dropped), or why it is not UTF-8 (E007)."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, error(
            "E007",
            f"the file is not UTF-8: byte 0x{data[exc.start]:02x} cannot start a character",
            Span(line, column, line, column + 1),
            hints=("save the file as UTF-8",),
        )


def load(text: str, limits: Limits = LIMITS) -> tuple[SourceDocument | None, list[Diagnostic]]:
    """Parse config text. Returns no document when the text cannot be read at all."""
    raw = _raw_controls(text)
    if raw:
        return None, raw
    try:
        refused = _check_limits(_FastLoader, text, limits)
        nodes = [] if refused else list(_compose_all(_FastLoader, text))
    except yaml.YAMLError:
        return None, [_syntax_error(text, limits)]
    if refused:
        return None, [refused]
    if not nodes:
        hint = "start with a consumers list: consumers: [{consumer: module:Class, queue: name}]"
        return None, [
            error("E006", "the file is empty: it needs at least a consumers list", Span(1, 1, 1, 1), hints=(hint,))
        ]
    if len(nodes) > 1:
        span = _span(nodes[1])
        return None, [
            error(
                "E006",
                "the file holds more than one YAML document",
                span,
                hints=("keep the whole configuration in one document: remove the `---` separators",),
            )
        ]
    builder = _Builder(limits)
    data = builder.build(nodes[0], ())
    document = SourceDocument(
        data=data,
        positions=builder.positions,
        ambiguous=builder.ambiguous,
        refused=builder.refused,
        incomplete=builder.incomplete,
    )
    return document, builder.diagnostics


def _compose_all(loader_class: Any, text: str) -> Iterator[Node]:
    loader = loader_class(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def _syntax_error(text: str, limits: Limits) -> Diagnostic:
    try:
        # The pure-Python composer recurses once per level: compose only what passed the limits.
        refused = _check_limits(_ExactLoader, text, limits)
        if refused:  # pragma: no cover - libyaml failed before the limit the exact parser reached
            return refused
        list(_compose_all(_ExactLoader, text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark and exc.context_mark and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # "got <stream end>": what was left open is the place to look
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        notes: tuple[str, ...] = ()
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            notes = (f"{exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}",)
        # Problems quote what they found (an alias name, a tag), which can be any length.
        problem = shorten(exc.problem or exc.context or "invalid YAML", 200)
        hints = (_syntax_hint(problem),)
        return error("E001", f"invalid YAML: {problem}", Span(line, column, line, column + 1), hints=hints, notes=notes)
    except yaml.reader.ReaderError as exc:  # a character YAML refuses anywhere, such as U+FFFE
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return error(
            "E001",
            f"invalid YAML: {_character_name(character)} cannot appear in a YAML file",
            Span(line, column, line, column + 1),
            hints=("remove it, or write it as an escape in a double-quoted string",),
        )
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        return error("E001", f"invalid YAML: {shorten(str(exc), 200)}", Span(1, 1, 1, 1))
    # libyaml refused what the pure-Python parser accepts, such as the surrogate escape "\ud800";
    # report libyaml's view.
    try:
        list(_compose_all(_FastLoader, text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = shorten(exc.problem or "invalid YAML", 200)
        return error(
            "E001", f"invalid YAML: {problem}", Span(line, column, line, column + 1), hints=(_syntax_hint(problem),)
        )
    return error("E001", "invalid YAML", Span(1, 1, 1, 1))  # pragma: no cover


def _syntax_hint(problem: str) -> str:
    if "'\\t'" in problem:
        return "YAML does not allow tabs for indentation: indent with spaces"
    if "<stream end>" in problem:
        return "a bracket or quote opened here is never closed"
    if "invalid Unicode character escape" in problem:
        # libyaml refuses "\ud800": a lone surrogate half, which no UTF-8 text can hold.
        return "\\uD800 to \\uDFFF are halves of surrogate pairs, not characters: remove the escape"
    return "check the indentation, quotes and brackets here and on the line before"


def _span(node: Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass(slots=True)
class _Open:
    """A list or mapping whose end event has not come yet, measured as if aliases were expanded."""

    anchor: str | None
    size: int = 1
    height: int = 1

    def add(self, size: int, height: int) -> None:
        self.size += size
        self.height = max(self.height, height + 1)


def _check_limits(loader_class: Any, text: str, limits: Limits) -> Diagnostic | None:
    """The first limit the text crosses, found on its event stream before any node is composed.

    The parsers are state machines, so this pass has no recursion, and it stops at the first
    value past a limit, so its memory is bounded by the limits, not by the file. Aliases are
    measured by the size and height of what they name, without expanding anything.
    """
    loader = loader_class(text)
    try:
        return _measure(_events(loader), limits)
    finally:
        loader.dispose()


def _events(loader: Any) -> Iterator[Event]:
    while loader.check_event():
        yield loader.get_event()


def _measure(events: Iterable[Event], limits: Limits) -> Diagnostic | None:
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) once expanded
    written = expanded = 0
    for event in events:
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.size, done.height)
            if stack:
                stack[-1].add(done.size, done.height)
            continue
        if not isinstance(event, NodeEvent):  # stream and document boundaries
            continue
        written += 1
        if written > limits.values:
            return _limit_error(event, f"the file holds more than {limits.values:,} values", limits)
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= limits.depth:
                return _limit_error(event, f"lists and mappings nest more than {limits.depth} levels deep", limits)
            stack.append(_Open(event.anchor))
            expanded += 1
            continue
        size, height = 1, 0
        if isinstance(event, AliasEvent) and event.anchor is not None:
            # An alias of an anchor still open is recursive: the builder reports it, so count it once.
            size, height = anchors.get(event.anchor, (1, 0))
        elif event.anchor is not None:
            anchors[event.anchor] = (1, 0)
        if len(stack) + height > limits.depth:
            message = f"this alias nests lists and mappings {len(stack) + height} levels deep"
            return _limit_error(event, f"{message}, more than the limit of {limits.depth}", limits)
        expanded += size
        if expanded > limits.expanded_values:
            # Only aliases multiply values, and the written ones are far fewer: aliases are the cause.
            message = f"aliases expand the file to more than {limits.expanded_values:,} values"
            return error("E005", message, _event_span(event), hints=("write the configuration out",))
        if stack:
            stack[-1].add(size, height)
    return None


def _limit_error(event: Event, message: str, limits: Limits) -> Diagnostic:
    return error("E008", message, _event_span(event), hints=(_limits_hint(limits),))


def _limits_hint(limits: Limits) -> str:
    return (
        f"the reader's limits are {limits.file_bytes:,} bytes, {limits.depth} levels of nesting and "
        f"{limits.values:,} values; real configs are far below them (hundreds of consumers take tens of KB, "
        "about 6 levels deep): is this the right file?"
    )


def _event_span(event: Event) -> Span:
    start, end = event.start_mark, event.end_mark
    if start is None or end is None:  # pragma: no cover - both parsers mark every event
        return Span(1, 1, 1, 1)
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class _Builder:
    """Turns the composed node graph into plain data, recording positions and problems."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.positions: dict[ConfigPath, Located] = {}
        self.diagnostics: list[Diagnostic] = []
        self.ambiguous: dict[ConfigPath, Diagnostic] = {}
        self.refused: set[ConfigPath] = set()
        self.incomplete: set[ConfigPath] = set()
        self._active: set[int] = set()
        # Nodes already reported: an aliased node is reported once, where it is written.
        self._reported: set[int] = set()
        self._spans: dict[int, Span] = {}
        self._readings: dict[int, tuple[Any, Any]] = {}

    def build(self, node: Node, path: ConfigPath, key: Span | None = None) -> Any:
        self.positions[path] = Located(key=key, value=self._span(node))
        if isinstance(node, ScalarNode):
            value = self._scalar(node, path)
            return None if value is _REFUSED else value
        if id(node) in self._active:
            self.diagnostics.append(error("E005", "this alias refers to a node that contains it", _span(node), path))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    def _sequence(self, node: SequenceNode, path: ConfigPath) -> list[Any]:
        if node.tag not in (_TAG + "seq",):
            self._unsupported_tag(node, path)
        return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]

    def _mapping(self, node: MappingNode, path: ConfigPath) -> dict[str, Any]:
        if node.tag not in (_TAG + "map",):
            self._unsupported_tag(node, path)
        result: dict[str, Any] = {}
        seen: dict[str, Span] = {}
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            key_span = self._span(key_node)
            if key in seen:
                first = seen[key]
                self.diagnostics.append(
                    error(
                        "E002",
                        f"duplicate key {shorten(key)!r}",
                        key_span,
                        (*path, key),
                        hints=("remove one of them: YAML 1.1 tools silently keep only the last",),
                        notes=(f"first defined at line {first.line}, column {first.column}",),
                    )
                )
                continue
            seen[key] = key_span
            result[key] = self.build(value_node, (*path, key), key_span)
        for key, value in self._merged_values(node, path, set(result)):
            result[key] = value
        return result

    def _merged_values(self, node: MappingNode, path: ConfigPath, own: set[str]) -> Iterator[tuple[str, Any]]:
        """Keys brought in by `<<: *anchor`; the mapping's own keys win, as in YAML 1.1."""
        for key_node, value_node in node.value:
            if not _is_merge_key(key_node):
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.diagnostics.append(error("E005", "`<<` can only merge mappings", _span(source), path))
                    continue
                for merged_key, merged_value in source.value:
                    key = self._key(merged_key, path)
                    if key is None or key in own:
                        continue
                    own.add(key)
                    yield key, self.build(merged_value, (*path, key), self._span(merged_key))

    def _key(self, node: Node, path: ConfigPath) -> str | None:
        """The key as a string; None, reported, when it cannot be one (and the pair is dropped)."""
        value = self._scalar(node, path, key=True) if isinstance(node, ScalarNode) else node
        if isinstance(value, str):
            return value
        if value is _REFUSED:
            self.incomplete.add(path)
            return None
        shown = _describe_key(node, value)
        self.diagnostics.append(
            error(
                "E004",
                f"keys must be names, but {shown} is not a string",
                _span(node),
                path,
                hints=(f"quote the key if it is meant as a name: {_quoted(node)}",)
                if isinstance(node, ScalarNode)
                else (),
            )
        )
        return None

    def _scalar(self, node: ScalarNode, path: ConfigPath, *, key: bool = False) -> Any:
        """The scalar's value, or _REFUSED once a diagnostic says why it has none."""
        if _is_long_integer(node.value, self.limits):
            self.refused.add(path)
            self._report(node, lambda: self._long_integer(node, path))
            return _REFUSED
        if node.tag == _PLAIN:
            value, old = self._reading(node)
            if not key and old is not _SAME and not _same_value(old, value):
                self._ambiguity(node, path, value, old)
        else:
            value = self._tagged(node, path)
        if isinstance(value, float) and not math.isfinite(value):
            message = f"{shorten(node.value)} is not a finite number"
            self.diagnostics.append(error("E005", message, _span(node), path, hints=("use a plain number",)))
            return _REFUSED
        if isinstance(value, str) and _first_unsafe(value) is not None:
            where = (*path, value) if key else path
            self.refused.add(where)
            self._report(node, lambda: _unsafe_character(node, where, value, key=key))
            return _REFUSED if key else value
        return value

    def _reading(self, node: ScalarNode) -> tuple[Any, Any]:
        """A plain scalar as YAML 1.2 and as YAML 1.1 read it, worked out once per node."""
        reading = self._readings.get(id(node))
        if reading is None:
            # YAML 1.1 reads `0b1…` and `1:30:…` as integers of any length, too long to print in
            # a message; a text that long is no number anyone meant, so it is not compared.
            long = len(node.value) > self.limits.integer_digits
            old = _SAME if long else _resolve_yaml11(node.value)
            reading = self._readings[id(node)] = (_resolve_core(node.value), old)
        return reading

    def _span(self, node: Node) -> Span:
        """The node's span, made once: aliases repeat a node on many paths."""
        span = self._spans.get(id(node))
        if span is None:
            span = self._spans[id(node)] = _span(node)
        return span

    def _report(self, node: Node, diagnostic: Callable[[], Diagnostic]) -> None:
        """Report a problem of the node once, however many aliases repeat it."""
        if id(node) not in self._reported:
            self._reported.add(id(node))
            self.diagnostics.append(diagnostic())

    def _long_integer(self, node: ScalarNode, path: ConfigPath) -> Diagnostic:
        digits = len(node.value.lstrip("+-"))
        return error(
            "E008",
            f"`{shorten(node.value)}` is an integer of {digits:,} characters, "
            f"more than the limit of {self.limits.integer_digits}",
            _span(node),
            path,
            hints=("no setting needs more than 20 digits; quote it if it is meant as text",),
        )

    def _tagged(self, node: ScalarNode, path: ConfigPath) -> Any:
        kind = node.tag.removeprefix(_TAG)
        if kind == "str":
            return node.value
        if kind in ("int", "float", "bool", "null"):
            value = _resolve_core(node.value)
            if _fits_tag(kind, value):
                return float(value) if kind == "float" else value
            message = f"{shorten(node.value)!r} cannot be read as !!{kind}"
            self.diagnostics.append(error("E005", message, _span(node), path))
            return None
        self._unsupported_tag(node, path)
        return node.value

    def _unsupported_tag(self, node: Node, path: ConfigPath) -> None:
        self.diagnostics.append(
            error(
                "E005",
                f"unsupported YAML tag {shorten(node.tag, 100)}",
                _span(node),
                path,
                hints=("the configuration is plain data: remove the tag",),
            )
        )

    def _ambiguity(self, node: ScalarNode, path: ConfigPath, value: Any, old: Any) -> None:
        text = shorten(node.value)
        if isinstance(old, bool):
            hint = f"write {str(old).lower()} for a boolean, or quote it ({_quoted(node)}) for a string"
        elif isinstance(value, str):
            hint = f"quote it ({_quoted(node)}) if you mean the text, or write the number so both agree"
        else:
            hint = f"quote it ({_quoted(node)}) for a string, or write {_plain_number(old, value)} so both agree"
        self.ambiguous[path] = error(
            "E003",
            f"`{text}` is read as {_show(value)} by YAML 1.2 (this tool, editors) "
            f"but as {_show(old)} by YAML 1.1 (PyYAML)",
            _span(node),
            path,
            hints=(hint,),
        )


# What _Builder._scalar returns for a scalar it reported as unusable.
_REFUSED: Any = object()

# Characters no name or value in a config needs, and which can forge or hide text wherever the
# value is printed (logs, terminals, the management UI): controls (NUL, TAB, ESC, DEL, C1),
# format characters (bidi embeddings, overrides and isolates, zero-width characters, the BOM,
# the soft hyphen), line and paragraph separators, and lone surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# The C0 controls by their ISO 6429 abbreviations, U+0000 to U+001F: unicodedata has no names for them.
_CONTROL_NAMES = (
    *("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF", "CR", "SO", "SI"),
    *("DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"),
)


def _first_unsafe(text: str) -> tuple[int, str] | None:
    """The offset and the first unsafe character of the text, if it holds one."""
    if text.isprintable():  # every unsafe character is unprintable: most strings stop here, at C speed
        return None
    for offset, char in enumerate(text):
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return offset, char
    return None


def _unsafe_character(node: ScalarNode, path: ConfigPath, value: str, *, key: bool) -> Diagnostic:
    found = _first_unsafe(value)
    assert found is not None
    offset, char = found
    others = sum(1 for later in value[offset + 1 :] if unicodedata.category(later) in _UNSAFE_CATEGORIES)
    what = "the key" if key else f'the value "{shorten(value)}"'
    more = f" (and {others:,} more such character{'s' if others > 1 else ''})" if others else ""
    return error(
        "E009",
        f"{what} holds {_character_name(char)} at offset {offset:,}{more}",
        _span(node),
        path,
        hints=(
            "remove it: names never need it, and printed in a log it can forge or hide text "
            "(a control character, a line break, or a bidi or zero-width format character)",
        ),
    )


# Written raw in the file, these stop YAML's reader (controls, lone surrogates) or break lines
# where YAML 1.2 and editors see none (NEL, U+2028, U+2029): found first, at their place, so that
# neither a garbled syntax error nor a shifted line number hides them. Format characters, which
# YAML reads, are the builder's to report in the value that holds them.
_RAW_REFUSED = frozenset({"Cc", "Cs", "Zl", "Zp"})
_RAW_ALLOWED = frozenset("\t\n\r")
_RAW_REPORTED = 10


def _raw_controls(text: str) -> list[Diagnostic]:
    """E009 for each control character written raw in the file (the first few of them)."""
    if text.translate({9: None, 10: None, 13: None}).isprintable():  # most files stop here, at C speed
        return []
    found: list[Diagnostic] = []
    line, start = 1, 0
    for index, char in enumerate(text):
        if char == "\n":
            line, start = line + 1, index + 1
        elif char not in _RAW_ALLOWED and unicodedata.category(char) in _RAW_REFUSED:
            if len(found) == _RAW_REPORTED:
                break
            column = index - start + 1
            found.append(
                error(
                    "E009",
                    f"line {line} holds {_character_name(char)} at column {column}, written as it is",
                    Span(line, column, line, column + 1),
                    hints=(
                        "remove it: a config needs no control character, and printed in a log it can forge or "
                        "hide text; where a value really holds one, write it as an escape in double quotes",
                    ),
                )
            )
    return found


def _character_name(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`, `U+0000 NUL`: controls have no name in unicodedata."""
    code = ord(char)
    name = unicodedata.name(char, "")
    if not name:
        if code < 0x20:
            name = _CONTROL_NAMES[code]
        elif code == 0x7F:
            name = "DEL"
        elif code == 0x85:
            name = "NEXT LINE (NEL)"
        elif unicodedata.category(char) == "Cn":
            name = "(not a character)"
        elif unicodedata.category(char) == "Cs":
            name = "(half of a surrogate pair, not a character)"
        else:
            name = "(a control character)"
    return f"U+{code:04X} {name}"


def _is_long_integer(text: str, limits: Limits) -> bool:
    """An integer Python could not print in messages, whatever tag it has (`!!bool 1…` is read too)."""
    return len(text) > limits.integer_digits and bool(
        _INT10.fullmatch(text) or _INT8.fullmatch(text) or _INT16.fullmatch(text)
    )


_SAME = object()
_yaml11_resolver = yaml.resolver.Resolver()
_yaml11_constructor = yaml.constructor.SafeConstructor()


def _resolve_core(text: str) -> Any:
    """Resolve a plain scalar with the YAML 1.2 core schema."""
    if _NULL.fullmatch(text):
        return None
    if _TRUE.fullmatch(text):
        return True
    if _FALSE.fullmatch(text):
        return False
    if _INT10.fullmatch(text):
        return int(text)
    if _INT8.fullmatch(text):
        return int(text[2:], 8)
    if _INT16.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _fits_tag(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return numeric and (kind == "float" or isinstance(value, int))


def _resolve_yaml11(text: str) -> Any:
    """What PyYAML's safe_load (YAML 1.1) makes of a plain scalar, or _SAME when it agrees by type."""
    tag: str = _yaml11_resolver.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    kind = tag.removeprefix(_TAG)
    if kind not in ("null", "bool", "int", "float", "str"):
        return _SAME  # timestamps and the like: we keep them as text, as editors do
    if kind == "str":  # what the constructor would return, at a fraction of its cost
        return text
    try:
        return _yaml11_constructor.construct_object(ScalarNode(tag, text))
    except (ValueError, yaml.YAMLError):  # pragma: no cover - e.g. an int too large for a float
        return _SAME


def _same_value(old: Any, new: Any) -> bool:
    if type(old) is not type(new):
        return False
    if isinstance(old, float) and math.isnan(old):
        return math.isnan(new)
    return bool(old == new)


def _is_merge_key(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _PLAIN and node.value == "<<"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'the string "{shorten(value)}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"the number {value!r}"


def _plain_number(old: Any, new: Any) -> str:
    return repr(new) if isinstance(new, int | float) else repr(old)


def _quoted(node: Node) -> str:
    return '"' + shorten(str(node.value).replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _describe_key(node: Node, value: Any) -> str:
    if isinstance(node, ScalarNode):
        return f"`{shorten(node.value)}` ({_show(value)})"
    return "a mapping" if isinstance(node, MappingNode) else "a list"


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting also the strings that a YAML 1.2 reader (js-yaml, Go's
    yaml.v3) takes for numbers and a YAML 1.1 writer leaves plain: 0800, 1e3, 0o17."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+)$"), list("-+0123456789"))
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def dump(data: object) -> str:
    """YAML text of plain data, for the generated documents (deploy/kubernetes.py, documents/):
    the safe dumper, block style, keys in the order given, anything but printable ASCII escaped,
    and every string a YAML 1.1 or 1.2 reader could take for another type quoted, so that every
    YAML reader (kubectl's and the AsyncAPI parser's among them) reads back the same data."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=False, width=4096
    )
    return text
