"""topology.mmd: the service's topology as a Mermaid flowchart.

Owns the drawing: exchanges (hexagons) to queues (cylinders) along their bindings, labelled
with what each matches; queues to their consumer entries (class name and instances); and,
dashed, every other path a message can take: a retry policy's delays and parking, dead-letter
routes, alternate exchanges. Node ids come from topology.py (letters, digits and `_`); every
label is quoted, and every character in it that Mermaid could read as syntax (quotes, `#`,
`%`, `:`, brackets, `<`, anything outside ASCII) is written as an entity code, `#34;`, so that
no name can end a label, open a comment or a directive, or inject markup. Knows nothing of
YAML or AsyncAPI.
"""

from __future__ import annotations

import string

from amqp_dispatcher.runtime.spec import Exchange, Queue, Service

from ..refs import ImportRef
from . import topology
from .topology import DEFAULT_EXCHANGE, Consumer, Edge, Node

COMMENT = "%%"
# Kept as they are in a label; anything else is an entity code (see the docstring).
_PLAIN = frozenset(string.ascii_letters + string.digits + " .,-_/*()+=!?'@^~")
_PLACEHOLDERS = ("\ufb02\u00b0", "\u00b6\u00df")  # Mermaid's, for an entity code's `&` or `&#`, and `;`
_JOINER = "\u2060"
_STYLES = (
    "classDef delay fill:#fff4d6,stroke:#b7791f,stroke-dasharray:4 3",
    "classDef parking fill:#fde2e1,stroke:#c0392b",
    "classDef external fill:#f2f2f2,stroke:#888,stroke-dasharray:2 2",
)


def render(service: Service[ImportRef, ImportRef], *, header: str) -> str:
    """The flowchart of `service`, after a `%%` comment line holding `header`."""
    view = topology.build(service)
    lines = [f"{COMMENT} {header}", "flowchart LR"]
    lines += _section("exchanges", [f"{node.id}{{{{{_label(*_exchange_text(node))}}}}}" for node in view.exchanges])
    lines += _section("queues", [f"{node.id}[({_label(*_queue_text(node))})]" for node in view.queues])
    lines += _section("consumer entries", [f"{c.id}([{_label(*_consumer_text(c))}])" for c in view.consumers])
    lines += _section("bindings", [_edge(edge, "-->") for edge in view.bindings])
    lines += _section("consuming", [f"{c.queue.id} --> {c.id}" for c in view.consumers])
    retries = [f"{c.id} -.->|{_label(step.label)}| {step.queue.id}" for c in view.consumers for step in c.steps]
    lines += _section("retry and parking", retries)
    lines += _section("dead letters", [_edge(edge, "-.->") for edge in view.dead_letters])
    lines += _section("alternate exchanges", [_edge(edge, "-.->") for edge in view.alternates])
    lines += _section("styles", [*_STYLES, *_classes(view)])
    return "\n".join(lines) + "\n"


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"    {COMMENT} {title}", *(f"    {line}" for line in lines)] if lines else []


def _edge(edge: Edge, arrow: str) -> str:
    label = f"|{_label(edge.label)}| " if edge.label else " "
    return f"{edge.source.id} {arrow}{label}{edge.target.id}"


def _exchange_text(node: Node) -> tuple[str, ...]:
    if node.name == DEFAULT_EXCHANGE:
        return ("(default exchange)",)
    kind = topology.exchange_type(node)
    if isinstance(node.spec, Exchange) and not node.spec.passive:
        return (node.name, f"{kind} exchange" + (", internal" if node.spec.internal else ""))
    return (node.name, f"{kind + ' exchange, ' if kind else ''}{_not_declared(node)}")


def _queue_text(node: Node) -> tuple[str, ...]:
    if node.role == "delay" and isinstance(node.spec, Queue):
        ttl = node.spec.arguments.get("x-message-ttl")
        return (node.name, f"delay queue, {topology.seconds(ttl / 1000)}" if isinstance(ttl, int) else "delay queue")
    if node.role == "parking":
        return (node.name, "parking queue" + ("" if node.is_declared else f", {_not_declared(node)}"))
    if not node.is_declared:
        return (node.name, _not_declared(node))
    return (node.name,)


def _consumer_text(consumer: Consumer) -> tuple[str, ...]:
    entry = consumer.entry
    return (
        f"{entry.consumer.attr} ×{entry.consumer_count}",
        f"prefetch {entry.prefetch_count}",
        f"on_error {consumer.policy}",
    )


def _not_declared(node: Node) -> str:
    return "passive, declared elsewhere" if node.spec is not None else "not declared here"


def _classes(view: topology.Topology) -> list[str]:
    groups = {
        "delay": [node.id for node in view.queues if node.role == "delay"],
        "parking": [node.id for node in view.queues if node.role == "parking"],
        "external": [node.id for node in (*view.exchanges, *view.queues) if not node.is_declared and not node.role],
    }
    return [f"class {','.join(ids)} {name}" for name, ids in groups.items() if ids]


def _label(name: str, *notes: str) -> str:
    """A quoted Mermaid label: the name, then the notes in brackets, on one line.

    One line: a label holding markup such as `<br/>` takes Mermaid's HTML path, which reads
    `$$...$$` as KaTeX, `fa:fa-...` as an icon and `\\n` as a line break, whatever the escapes.
    """
    text = f"{name} ({', '.join(notes)})" if notes else name
    return f'"{escape(text)}"'


def escape(text: str) -> str:
    """`text` as label text that Mermaid shows as it is: syntax and non-ASCII as entity codes.

    Mermaid trims a label, so spaces at either end are codes too. It also decodes its own
    placeholders for codes (`ﬂ°°`, `ﬂ°` and `¶ß`) a second time, after the codes have become
    characters, so those pairs get a word joiner (U+2060, invisible) between their characters.
    """
    for pair in _PLACEHOLDERS:
        text = text.replace(pair, _JOINER.join(pair))
    first, end = len(text) - len(text.lstrip(" ")), len(text.rstrip(" "))
    return "".join(char if char in _PLAIN and first <= i < end else _code(char) for i, char in enumerate(text))


def _code(char: str) -> str:
    return f"#{ord(char)};"
