"""Reading config.yml: YAML text to plain data, plus where in the file every value came from.

The only importer of yaml. It reads with the YAML 1.2 core schema, as editors do, so that
CI and the editor agree on what the file means. Duplicate keys, non-string keys, custom tags
and recursive aliases are errors, and so is every plain scalar that YAML 1.1 (PyYAML, the
original amqp-dispatcher) reads differently, such as `no`, `on` or `0755`. Knows nothing
of the schema or of what the keys mean.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import ConfigPath, Diagnostic, Span, error

_PLAIN = "tag:amqp-dispatcher,2026:plain"
_TAG = "tag:yaml.org,2002:"
_MAX_NODES = 1_000_000

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


def load(text: str) -> tuple[SourceDocument | None, list[Diagnostic]]:
    """Parse config text. Returns no document when the text cannot be read at all."""
    try:
        nodes = list(_compose_all(_FastLoader, text))
    except yaml.YAMLError:
        return None, [_syntax_error(text)]
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
    if _expanded_size(nodes[0], {}, set()) > _MAX_NODES:
        message = f"aliases expand the file to more than {_MAX_NODES:,} values"
        return None, [error("E005", message, Span(1, 1, 1, 1), hints=("write the configuration out",))]
    builder = _Builder()
    data = builder.build(nodes[0], ())
    document = SourceDocument(data=data, positions=builder.positions, ambiguous=builder.ambiguous)
    return document, builder.diagnostics


def _compose_all(loader_class: Any, text: str) -> Iterator[Node]:
    loader = loader_class(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def _syntax_error(text: str) -> Diagnostic:
    try:
        list(_compose_all(_ExactLoader, text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark and exc.context_mark and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # "got <stream end>": what was left open is the place to look
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        notes: tuple[str, ...] = ()
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            notes = (f"{exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}",)
        problem = exc.problem or exc.context or "invalid YAML"
        hints = (_syntax_hint(problem),)
        return error("E001", f"invalid YAML: {problem}", Span(line, column, line, column + 1), hints=hints, notes=notes)
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        return error("E001", f"invalid YAML: {exc}", Span(1, 1, 1, 1))
    # libyaml refused what the pure-Python parser accepts; report libyaml's view.
    try:  # pragma: no cover - the two parsers agree on every input we know
        list(_compose_all(_FastLoader, text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return error("E001", f"invalid YAML: {exc.problem}", Span(line, column, line, column + 1))
    return error("E001", "invalid YAML", Span(1, 1, 1, 1))  # pragma: no cover


def _syntax_hint(problem: str) -> str:
    if "'\\t'" in problem:
        return "YAML does not allow tabs for indentation: indent with spaces"
    if "<stream end>" in problem:
        return "a bracket or quote opened here is never closed"
    return "check the indentation, quotes and brackets here and on the line before"


def _span(node: Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class _Builder:
    """Turns the composed node graph into plain data, recording positions and problems."""

    def __init__(self) -> None:
        self.positions: dict[ConfigPath, Located] = {}
        self.diagnostics: list[Diagnostic] = []
        self.ambiguous: dict[ConfigPath, Diagnostic] = {}
        self._active: set[int] = set()

    def build(self, node: Node, path: ConfigPath, key: Span | None = None) -> Any:
        self.positions[path] = Located(key=key, value=_span(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
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
            key_span = _span(key_node)
            if key in seen:
                first = seen[key]
                self.diagnostics.append(
                    error(
                        "E002",
                        f"duplicate key {key!r}",
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
                    yield key, self.build(merged_value, (*path, key), _span(merged_key))

    def _key(self, node: Node, path: ConfigPath) -> str | None:
        value = self._scalar(node, path, record=False) if isinstance(node, ScalarNode) else node
        if isinstance(value, str):
            return value
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

    def _scalar(self, node: ScalarNode, path: ConfigPath, *, record: bool = True) -> Any:
        if node.tag == _PLAIN:
            value = _resolve_core(node.value)
            if record:
                self._check_ambiguity(node, path, value)
        else:
            value = self._tagged(node, path)
        if isinstance(value, float) and not math.isfinite(value):
            self.diagnostics.append(
                error("E005", f"{node.value} is not a finite number", _span(node), path, hints=("use a plain number",))
            )
            return None
        return value

    def _tagged(self, node: ScalarNode, path: ConfigPath) -> Any:
        kind = node.tag.removeprefix(_TAG)
        if kind == "str":
            return node.value
        if kind in ("int", "float", "bool", "null"):
            value = _resolve_core(node.value)
            if _fits_tag(kind, value):
                return float(value) if kind == "float" else value
            self.diagnostics.append(error("E005", f"{node.value!r} cannot be read as !!{kind}", _span(node), path))
            return None
        self._unsupported_tag(node, path)
        return node.value

    def _unsupported_tag(self, node: Node, path: ConfigPath) -> None:
        self.diagnostics.append(
            error(
                "E005",
                f"unsupported YAML tag {node.tag}",
                _span(node),
                path,
                hints=("the configuration is plain data: remove the tag",),
            )
        )

    def _check_ambiguity(self, node: ScalarNode, path: ConfigPath, value: Any) -> None:
        old = _resolve_yaml11(node.value)
        if old is _SAME or _same_value(old, value):
            return
        text = node.value
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


def _expanded_size(node: Node, sizes: dict[int, int], active: set[int]) -> int:
    """How many values the node becomes once aliases are expanded, without expanding them."""
    if id(node) in sizes:
        return sizes[id(node)]
    if isinstance(node, ScalarNode) or id(node) in active:  # a cycle is reported while building
        return 1
    active.add(id(node))
    children = node.value if isinstance(node, SequenceNode) else [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, sizes, active) for child in children)
    active.discard(id(node))
    sizes[id(node)] = size
    return size


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
        return f'the string "{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"the number {value!r}"


def _plain_number(old: Any, new: Any) -> str:
    return repr(new) if isinstance(new, int | float) else repr(old)


def _quoted(node: Node) -> str:
    return '"' + str(node.value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe_key(node: Node, value: Any) -> str:
    if isinstance(node, ScalarNode):
        return f"`{node.value}` ({_show(value)})"
    return "a mapping" if isinstance(node, MappingNode) else "a list"
