"""Property: any names and values, however hostile, come back from the generated code exactly.

Hypothesis writes configs whose names and argument values hold quotes, backslashes, escape
sequences written out, non-ASCII text and template syntax; each is built, the generated module
is executed, and its frozen table is compared with the input. A value that could end a string
literal early would change the table, break the module, or fail ruff. (Control, format and
bidi characters are refused at build time, E009: test_hostile_input.py covers them.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.compiler.arguments import QUEUE_ARGUMENTS
from amqp_dispatcher.compiler.pipeline import BuildOptions, build

MODULES = Path(__file__).parent / "artifact"
HOSTILE = st.sampled_from(['"', "'", "\\", "\\n", "\\x00", "\\u2028", "é", "🐇", "{{", "}}", "{%", "#", '"""', "amq"])
# Any other text, except the characters E009 refuses in names (controls, format, line separators).
SAFE_TEXT = st.text(st.characters(exclude_categories=["Cc", "Cf", "Zl", "Zp", "Cs"]), max_size=4)
TEXT = st.lists(st.one_of(HOSTILE, SAFE_TEXT), min_size=1, max_size=6).map("".join)


def valid_name(text: str) -> bool:
    return 0 < len(text.encode("utf-8")) <= 255 and not text.startswith("amq.")


NAME = TEXT.filter(valid_name)
KEY = TEXT.filter(lambda text: text != "" and "x-" + text not in QUEUE_ARGUMENTS)
SCALAR = st.one_of(TEXT, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())
ARGUMENT = st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(KEY, SCALAR, max_size=3))


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    queue_names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    exchange_names = draw(st.lists(NAME, max_size=2, unique=True))
    queues = []
    for name in queue_names:
        bound = draw(st.lists(st.sampled_from(exchange_names), max_size=2)) if exchange_names else []
        bindings = [
            {
                "exchange": exchange,
                "routing_key": draw(TEXT.filter(lambda t: len(t.encode()) <= 255)),
                "arguments": draw(st.dictionaries(KEY, ARGUMENT, max_size=2)),
            }
            for exchange in bound
        ]
        queues.append(
            {
                "queue": name,
                "arguments": {
                    "x-" + key: value for key, value in draw(st.dictionaries(KEY, ARGUMENT, max_size=2)).items()
                },
                "bindings": bindings,
            }
        )
    exchanges = [
        {"exchange": name, "type": "topic", "arguments": draw(st.dictionaries(KEY, ARGUMENT, max_size=2))}
        for name in exchange_names
    ]
    consumers = [
        {
            "consumer": "consumers:Consumer",
            "queue": draw(st.sampled_from(queue_names)),
            "consumer_count": draw(st.integers(1, 3)),
            "prefetch_count": draw(st.integers(3, 65535)),
        }
    ]
    return {"name": draw(NAME), "consumers": consumers, "queues": queues, "exchanges": exchanges}


def as_yaml(config: dict[str, Any]) -> bytes:
    # Every string double-quoted: YAML escapes what it must, and nothing is read as another type.
    return yaml.safe_dump(config, allow_unicode=True, default_style='"', sort_keys=False).encode("utf-8")


def table(namespace: dict[str, Any]) -> dict[str, Any]:
    service = namespace["SERVICE"]
    return {
        "name": service.name,
        "consumers": [
            {
                "consumer": "consumers:Consumer",
                "queue": c.queue,
                "consumer_count": c.consumer_count,
                "prefetch_count": c.prefetch_count,
            }
            for c in service.consumers
        ],
        "queues": [
            {
                "queue": q.name,
                "arguments": dict(q.arguments),
                "bindings": [
                    {"exchange": b.exchange, "routing_key": b.routing_key, "arguments": dict(b.arguments)}
                    for b in q.bindings
                ],
            }
            for q in service.queues
        ],
        "exchanges": [{"exchange": e.name, "type": e.type, "arguments": dict(e.arguments)} for e in service.exchanges],
    }


def normalized(config: dict[str, Any]) -> dict[str, Any]:
    """The input with arguments in name order, as the generator writes them."""

    def sort(arguments: dict[str, Any]) -> dict[str, Any]:
        return {key: arguments[key] for key in sorted(arguments)}

    return {
        **config,
        "queues": [
            {
                **q,
                "arguments": sort(q["arguments"]),
                "bindings": [{**b, "arguments": sort(b["arguments"])} for b in q["bindings"]],
            }
            for q in config["queues"]
        ],
        "exchanges": [{**e, "arguments": sort(e["arguments"])} for e in config["exchanges"]],
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs())
def test_hostile_values_round_trip_exactly(config: dict[str, Any], tmp_path_factory: Any) -> None:
    result = build(as_yaml(config), "config.yml", BuildOptions(roots=(str(MODULES),)))
    errors = [d for d in result.diagnostics if d.is_error]
    assert result.files is not None, errors
    source = result.files["__init__.py"]
    sys.path.insert(0, str(MODULES))
    try:
        namespace: dict[str, Any] = {}
        exec(compile(source, "__init__.py", "exec"), namespace)
    finally:
        sys.path.remove(str(MODULES))
    assert table(namespace) == normalized(config)
    workdir = tmp_path_factory.mktemp("ruff")
    (workdir / "__init__.py").write_text(source, encoding="utf-8")
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--isolated", "--check", "--diff", str(workdir)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", str(workdir)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
