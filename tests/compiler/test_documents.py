"""--asyncapi and --graph: documents of the service that never drift from the config.

Each document is judged by its own project's tool (tests/compiler/documents/tools.py): the AsyncAPI
document by @asyncapi/parser, which AsyncAPI's CLI and Studio use (the specification's schema,
the AMQP bindings' schemas, then its rules), the Mermaid graph by the Mermaid CLI, rendered to
SVG in Chromium, for the example, the artifact config, and generated topologies with hostile
names, every exchange type, headers bindings and every error policy. Around them: --check
covers both files, the documents are byte-identical whatever the dict order, the machine or the
folder, a build refuses a path it must not write, and no credential reaches a document.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.compiler import cli, documents
from amqp_dispatcher.compiler.documents import graph, topology
from amqp_dispatcher.compiler.documents.commonmark import code
from amqp_dispatcher.compiler.policies import error_policy, policy_queues
from amqp_dispatcher.compiler.refs import ImportRef
from amqp_dispatcher.runtime import policy
from amqp_dispatcher.runtime.spec import Binding, ConsumerEntry, Exchange, Queue, Retry, Service
from tests.compiler.documents import tools
from tests.compiler.helpers import project, run
from tests.conftest import ROOT

ARTIFACT = Path(__file__).parent / "artifact"  # a headers exchange, an alternate one, a quoted queue name
EXAMPLE = ROOT / "examples"
CANARY = "canary-secret-5d1e"
FLAGS = ("--asyncapi", "asyncapi.yaml", "--graph", "topology.mmd")
# The one note the parser adds to every valid 3.0.0 document: 3.1.0 exists. The brief is 3.0.
ALLOWED_NOTES = {"asyncapi-latest-version"}
# The first test that needs a checker installs it (npm ci, and apt for Chromium on a new machine).
INSTALLS = pytest.mark.timeout(1800)


@pytest.fixture(autouse=True)
def credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", f"amqp://deployer:{CANARY}@broker.internal/prod")
    monkeypatch.setenv("RABBITMQ_PASS", CANARY)


@pytest.fixture(scope="module")
def parser() -> tools.Checkers:
    return tools.Checkers(tools.require(tools.packages))


@pytest.fixture(scope="module")
def renderer() -> tools.Checkers:
    return tools.Checkers(tools.require(tools.packages), tools.require(tools.chromium))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact project, built once with both documents."""
    root = project(tmp_path_factory.mktemp("built") / "project")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("RABBITMQ_URL", f"amqp://deployer:{CANARY}@broker.internal/prod")
        status, out, err = run("config.yml", "-o", "service", *FLAGS)
    assert status == 0, err
    assert out.endswith("wrote asyncapi.yaml\nwrote topology.mmd\n")
    return root


# What is written, and when


def test_each_document_starts_with_the_generated_header(built: Path) -> None:
    first = f"{documents.GENERATED}2."
    assert (built / "asyncapi.yaml").read_text().startswith(f"# {first}")
    assert (built / "topology.mmd").read_text().startswith(f"%% {first}")
    for name in ("asyncapi.yaml", "topology.mmd"):
        assert (built / name).read_text().split("\n", 1)[0].endswith(" from config.yml. Do not edit.")


def test_without_the_flags_no_document_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "project")
    monkeypatch.chdir(root)
    assert run("config.yml", "-o", "service")[0] == 0
    assert sorted(path.name for path in root.iterdir()) == sorted([*os.listdir(ARTIFACT), "service"])


def test_check_passes_on_fresh_documents_and_shows_the_diff_of_a_stale_one(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(built)
    status, out, _ = run("config.yml", "-o", "service", *FLAGS, "--check")
    assert (status, out) == (0, "service is up to date\nasyncapi.yaml is up to date\ntopology.mmd is up to date\n")
    graph_text = (built / "topology.mmd").read_text()
    try:
        (built / "topology.mmd").write_text(graph_text.replace("flowchart LR", "flowchart TB"))
        (built / "asyncapi.yaml").rename(built / "asyncapi.yaml.saved")
        status, out, err = run("config.yml", "-o", "service", *FLAGS, "--check")
        assert status == 1 and "service is up to date\n" in out
        assert "asyncapi.yaml is stale: asyncapi.yaml does not exist\n" in err
        assert "topology.mmd is stale: topology.mmd differs\n" in err
        assert "-flowchart TB\n+flowchart LR\n" in err  # the diff, on disk -> fresh
        assert f"rebuild it: dispatcher-build <config> -o service {' '.join(FLAGS)}\n" in err
    finally:
        (built / "topology.mmd").write_text(graph_text)
        (built / "asyncapi.yaml.saved").rename(built / "asyncapi.yaml")


def test_a_changed_config_makes_both_documents_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "project")
    monkeypatch.chdir(root)
    assert run("config.yml", "-o", "service", *FLAGS)[0] == 0
    (root / "config.yml").write_text(
        (root / "config.yml").read_text().replace("prefetch_count: 20", "prefetch_count: 7")
    )
    status, _, err = run("config.yml", "-o", "service", *FLAGS, "--check")
    assert status == 1 and "asyncapi.yaml differs" in err and "topology.mmd differs" in err
    assert "+    x-prefetch-count: 7\n" in err and "prefetch 7, on_error requeue" in err


def test_a_rebuild_replaces_the_documents_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "project")
    monkeypatch.chdir(root)
    assert run("config.yml", "-o", "service", "--asyncapi", "docs/api/asyncapi.yaml", "--graph", "topology.mmd")[0] == 0
    (root / "config.yml").write_text((root / "config.yml").read_text().replace("name: artifact", "name: billing"))
    assert run("config.yml", "-o", "service", "--asyncapi", "docs/api/asyncapi.yaml", "--graph", "topology.mmd")[0] == 0
    assert "\n  title: billing\n" in (root / "docs" / "api" / "asyncapi.yaml").read_text()
    assert not [path for path in root.rglob(".*") if path.is_file()]  # no staging file left


@pytest.mark.parametrize(
    "arguments,message",
    [
        (
            ("--asyncapi", "service/asyncapi.yaml"),
            "--asyncapi service/asyncapi.yaml: choose a file outside the package",
        ),
        (("--graph", "other/../service/t.mmd"), "--graph other/../service/t.mmd: choose a file outside the package"),
        (
            ("--deploy", "deploy", "--graph", "deploy/topology.mmd"),
            "--graph deploy/topology.mmd: choose a file outside the deploy folder --deploy deploy",
        ),
        (("--asyncapi", "config.yml"), "--asyncapi config.yml: that is the config"),
        (("--asyncapi", "same.txt", "--graph", "./same.txt"), "--asyncapi and --graph name the same file"),
        (("--asyncapi", "consumers.py"), "--asyncapi consumers.py: the file exists and is not an AsyncAPI document"),
        (("--graph", "other"), "--graph other: it exists and is not a regular file"),
    ],
    ids=["in-the-package", "dotdot-into-the-package", "in-the-deploy-folder", "the-config", "twice", "foreign", "dir"],
)
def test_a_path_the_build_must_not_write_is_a_usage_error_and_nothing_is_written(
    arguments: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path / "project")
    monkeypatch.chdir(root)
    before = files(root)
    status, _, err = run("config.yml", "-o", "service", *arguments)
    assert status == 2 and message in err, err
    assert "Traceback" not in err
    assert files(root) == before
    assert not (root / "service").exists()


def files(root: Path) -> dict[Path, bytes]:
    """Every file under `root` with its bytes, but Python's caches."""
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


def test_a_document_of_the_other_kind_is_not_replaced(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built)
    status, _, err = run("config.yml", "-o", "service", "--graph", "asyncapi.yaml")
    assert status == 2 and "--graph asyncapi.yaml: the file exists and is not a Mermaid graph" in err


def test_no_credential_of_the_build_environment_reaches_a_document(built: Path) -> None:
    for name in ("asyncapi.yaml", "topology.mmd"):
        text = (built / name).read_text()
        assert CANARY not in text and "deployer" not in text and "guest" not in text, name
    assert "servers" not in yaml.safe_load((built / "asyncapi.yaml").read_text())


def test_two_builds_are_byte_identical_wherever_and_however_they_run(tmp_path: Path) -> None:
    outputs = []
    for where, env in (("one", {}), ("two/deeper", {"TZ": "Asia/Kolkata", "LANG": "C", "PYTHONHASHSEED": "7"})):
        root = project(tmp_path / where)
        command = [sys.executable, "-m", "amqp_dispatcher.compiler.cli", "config.yml", "-o", "service", *FLAGS]
        result = subprocess.run(command, cwd=root, env={**os.environ, **env}, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        outputs.append([(root / name).read_bytes() for name in ("asyncapi.yaml", "topology.mmd")])
    assert outputs[0] == outputs[1]


def test_the_examples_documents_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE)
    status, _, err = run("config.yml", "-o", "service", *FLAGS, "--check")
    assert status == 0, f"{err}rebuild them: cd examples && dispatcher-build config.yml -o service {' '.join(FLAGS)}"


@pytest.mark.parametrize("page", ["docs/documents.md", "README.md"])
def test_the_docs_show_the_examples_graph(page: str) -> None:
    docs = (ROOT / page).read_text()
    block = docs.split("```mermaid\n", 1)[1].split("```\n", 1)[0]
    assert block == (EXAMPLE / "topology.mmd").read_text().split("\n", 1)[1]


# What the AsyncAPI document says


def test_asyncapi_has_a_channel_per_exchange_and_queue_and_an_operation_per_entry() -> None:
    document = yaml.safe_load((EXAMPLE / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    sha = yaml.safe_load((EXAMPLE / "service" / "manifest.json").read_text())["config"]["sha256"]
    assert document["info"]["version"] == f"sha256-{sha[:12]}" and document["info"]["x-config-sha256"] == sha
    amqp = {key: channel["bindings"]["amqp"] for key, channel in document["channels"].items()}
    assert amqp["exchange_shop"] == {
        "is": "routingKey",
        "exchange": {"name": "shop", "type": "topic", "durable": True, "autoDelete": False},
        "bindingVersion": "0.3.0",
    }
    assert amqp["queue_shop_orders"]["queue"] == {
        "name": "shop.orders",
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
    }
    assert amqp["queue_shop_orders_retry_10s"]["x-arguments"] == [
        {"name": "x-dead-letter-exchange", "value": ""},
        {"name": "x-dead-letter-routing-key", "value": "shop.orders"},
        {"name": "x-message-ttl", "value": 10000},
    ]
    assert document["channels"]["queue_shop_orders"]["x-queue-bindings"] == [
        {"exchange": "shop", "routingKey": "order.*"}
    ]
    receive = {key: op for key, op in document["operations"].items() if op["action"] == "receive"}
    assert sorted(receive) == ["consumer_OrderConsumer_shop_orders", "consumer_RefundConsumer_shop_refunds"]
    orders = receive["consumer_OrderConsumer_shop_orders"]
    assert (orders["x-consumer-count"], orders["x-prefetch-count"]) == (4, 20)
    assert orders["x-on-error"] == {
        "policy": "retry",
        "max_attempts": 4,
        "delays": [1, 10, 60],
        "delay_queues": ["shop.orders.retry.1s", "shop.orders.retry.10s", "shop.orders.retry.60s"],
        "parking_queue": "shop.orders.parked",
    }
    assert orders["bindings"]["amqp"] == {"ack": True, "bindingVersion": "0.3.0"}
    sends = [op["channel"]["$ref"] for op in document["operations"].values() if op["action"] == "send"]
    assert sends == [
        "#/channels/queue_shop_orders_retry_1s",
        "#/channels/queue_shop_orders_retry_10s",
        "#/channels/queue_shop_orders_retry_60s",
        "#/channels/queue_shop_orders_parked",
    ]


def test_asyncapi_traits_carry_the_headers_the_runtime_sets() -> None:
    traits = yaml.safe_load((EXAMPLE / "asyncapi.yaml").read_text())["components"]["messageTraits"]
    retry = traits["retryProtocol"]["headers"]["properties"]
    parking = traits["parking"]["headers"]["properties"]
    assert {policy.ATTEMPTS, policy.LAST_ERROR, policy.ORIGINAL_EXCHANGE, policy.ORIGINAL_ROUTING_KEY} <= set(retry)
    assert {policy.EXCEPTION_TYPE, policy.CONSUMER, policy.QUEUE, policy.PARKED_AT, policy.RAW_HEADERS} <= set(parking)
    assert retry[policy.ATTEMPTS]["type"] == "integer"


def test_asyncapi_of_the_artifact_names_headers_matches_alternates_and_undeclared_targets(built: Path) -> None:
    document = yaml.safe_load((built / "asyncapi.yaml").read_text())
    channels = document["channels"]
    events = channels["exchange_events"]
    assert events["bindings"]["amqp"]["exchange"]["type"] == "headers"
    assert 'headers `x-match all, kind=["order", "refund"], nested={"depth": 2}`' in events["description"]
    assert "What it cannot route goes to exchange `unrouted`." in events["description"]
    quoted = 'it\'s "quoted" \\ and \\n, not a line break é 🐇'
    assert channels["queue_it_s_quoted_and_n_not_a_line_break"]["address"] == quoted
    orders = channels["queue_orders"]["description"]
    assert "go through the default exchange to queue `orders.dead`." in orders


def test_a_name_is_a_code_span_that_shows_it_as_it_is() -> None:
    assert code("shop.orders") == "`shop.orders`"
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert code(" lead") == "`  lead `"  # CommonMark strips one space at each end
    assert code("   ") == "`   `"
    assert code("") == '`""`'


# What the graph shows


def test_graph_draws_bindings_consumers_and_dashed_retry_parking_and_dead_letter_paths() -> None:
    text = (EXAMPLE / "topology.mmd").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[1] == "flowchart LR"
    assert 'exchange_shop -->|"order.*"| queue_shop_orders' in lines
    assert "exchange_shop_dead_letters --> queue_shop_dead_letters" in lines  # fanout: no label
    assert "queue_shop_orders --> consumer_OrderConsumer_shop_orders" in lines
    assert 'consumer_OrderConsumer_shop_orders(["OrderConsumer #215;4 (prefetch 20, on_error retry)"])' in lines
    retry = 'consumer_OrderConsumer_shop_orders -.->|"after attempt 1, wait 1 s"| queue_shop_orders_retry_1s'
    back = 'queue_shop_orders_retry_1s -.->|"dead-letter after 1 s"| queue_shop_orders'
    park = 'consumer_OrderConsumer_shop_orders -.->|"after attempt 4, park"| queue_shop_orders_parked'
    dead = 'queue_shop_refunds -.->|"dead-letter"| exchange_shop_dead_letters'
    assert {retry, back, park, dead} <= set(lines)


def test_graph_groups_the_attempts_that_share_a_delay() -> None:
    retry = error_policy("retry", "q", {"max_attempts": 9, "delays": [5, 30, 5]})
    assert isinstance(retry, Retry)
    assert topology.retry_attempts(retry) == {"q.retry.5s": "attempts 1, 3 to 8", "q.retry.30s": "attempt 2"}
    once = error_policy("retry", "q", {"max_attempts": 1, "delays": [5]})
    assert isinstance(once, Retry) and topology.retry_attempts(once) == {}


@pytest.mark.parametrize("name", ['a"b', "x-->y", "%%{init: {}}%%", "[a]", "<b>", "é", "`", "#quot;", " a ", "a:b"])
def test_a_label_holds_no_character_mermaid_reads_as_syntax(name: str) -> None:
    escaped = graph.escape(name)
    assert re.fullmatch(r"(?:[A-Za-z0-9 .,\-_/*()+=!?'@^~]|#\d+;)*", escaped), escaped
    assert not escaped.startswith(" ") and not escaped.endswith(" ")


# The real checkers: the example, the artifact, and generated topologies


@INSTALLS
def test_the_examples_documents_pass_asyncapis_parser_and_the_mermaid_cli(
    parser: tools.Checkers, renderer: tools.Checkers, tmp_path: Path
) -> None:
    assert_valid(parser, {"example": (EXAMPLE / "asyncapi.yaml").read_text()}, tmp_path)
    svg = assert_renders(renderer, {"example": (EXAMPLE / "topology.mmd").read_text()}, tmp_path)["example"]
    labels = node_texts(svg)
    assert labels["queue_shop_orders_parked"] == "shop.orders.parked (parking queue)"
    assert labels["consumer_OrderConsumer_shop_orders"] == "OrderConsumer ×4 (prefetch 20, on_error retry)"


@INSTALLS
def test_the_artifacts_documents_pass_both_checkers(
    built: Path, parser: tools.Checkers, renderer: tools.Checkers, tmp_path: Path
) -> None:
    assert_valid(parser, {"artifact": (built / "asyncapi.yaml").read_text()}, tmp_path)
    assert_renders(renderer, {"artifact": (built / "topology.mmd").read_text()}, tmp_path)


@INSTALLS
def test_the_checkers_refuse_a_broken_document(
    parser: tools.Checkers, renderer: tools.Checkers, tmp_path: Path
) -> None:
    """Neither check is vacuous: a wrong binding value and a Mermaid syntax error are reported."""
    wrong = (EXAMPLE / "asyncapi.yaml").read_text().replace("deliveryMode: 2", "deliveryMode: 3", 1)
    (tmp_path / "wrong.yaml").write_text(wrong)
    report = parser.validate_asyncapi([tmp_path / "wrong.yaml"])
    assert any(d["severity"] == 0 and d["path"].endswith("deliveryMode") for d in report[str(tmp_path / "wrong.yaml")])
    (tmp_path / "wrong.mmd").write_text("flowchart LR\n    a --> b -->\n")
    assert "Parse error" in (renderer.render_mermaid([tmp_path / "wrong.mmd"])[str(tmp_path / "wrong.mmd")] or "")


HOSTILE = [
    *('"', "'", "`", "```", "#", "#quot;", "#35;", "&amp;", ";", ":", "|", "[", "]", "(", ")", "{", "}", "{id}"),
    *("-->", "-.->", "%%", "%%{init: {'theme': 'dark'}}%%", "<b>x</b>", "<script>alert(1)</script>", "\\", "*"),
    *("_", "~", "$$x^2$$", "fa:fa-car", ":::c", "end", "style", "classDef", "subgraph", "click", "graph", "o", "x"),
    *("é", "🐇", "名前", "\u2028", "\ufb02\u00b0\u00b0", "\u00b6\u00df", " ", "  ", "$ref", "#/channels/x", "~1", "."),
    *("amq.", "x-match", "**b**", "[l](http://x)", "<!--", "-->", "\u00d7", "a"),
    *("0800", "1e3", "0o17", "-1e-3", "012e3", ".5", "0x1F", "yes", "null", "~"),
]
_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Cf"]), min_size=1, max_size=6)
names = (
    st.lists(st.sampled_from(HOSTILE) | _TEXT, min_size=1, max_size=4)
    .map("".join)
    .filter(lambda name: len(name.encode()) <= 120)
)
classes = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
EXCHANGE_TYPES = ["direct", "fanout", "topic", "headers", "x-consistent-hash", "x-delayed-message"]
scalars = st.integers(-5, 10**6) | st.booleans() | names


@st.composite
def services(draw: st.DrawFn) -> Service[ImportRef, ImportRef]:
    """A topology a config could describe: unique names, every exchange type, bindings (with
    header matches), dead-letter routes, alternate exchanges and every error policy."""
    exchange_names = draw(st.lists(names, max_size=4, unique=True))
    queue_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    some_exchange = st.sampled_from([*exchange_names, "amq.topic", "amq.headers"]) | names
    exchanges = tuple(
        Exchange(
            name=name,
            type=draw(st.sampled_from(EXCHANGE_TYPES)),
            durable=draw(st.booleans()),
            auto_delete=draw(st.booleans()),
            internal=draw(st.booleans()),
            passive=draw(st.booleans()),
            arguments=draw(st.fixed_dictionaries({}, optional={"alternate-exchange": some_exchange})),
        )
        for name in exchange_names
    )
    queue_arguments = st.fixed_dictionaries(
        {},
        optional={
            "x-dead-letter-exchange": st.just("") | some_exchange,
            "x-dead-letter-routing-key": st.sampled_from(queue_names) | names,
            "x-message-ttl": st.integers(0, 10**7),
            "x-queue-type": st.sampled_from(["classic", "quorum", "stream"]),
            "x-max-priority": st.integers(1, 255),
        },
    )
    binding_arguments = st.dictionaries(names, scalars, max_size=2).map(
        lambda headers: headers | {"x-match": "any"} if headers else headers
    )
    bindings = st.builds(Binding, exchange=some_exchange, routing_key=st.just("") | names, arguments=binding_arguments)
    queues = tuple(
        Queue(
            name=name,
            durable=draw(st.booleans()),
            auto_delete=draw(st.booleans()),
            exclusive=draw(st.booleans()),
            passive=draw(st.booleans()),
            arguments=draw(queue_arguments),
            bindings=tuple(draw(st.lists(bindings, max_size=3))),
        )
        for name in queue_names
    )
    consumers = tuple(draw(st.lists(entries(st.sampled_from(queue_names) | names), min_size=1, max_size=4)))
    return Service(
        name=draw(names),
        config_sha256=draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
        monkey_patch=False,
        heartbeat=60,
        shutdown_timeout=30.0,
        startup_timeout=60.0,
        blocking_threshold=None,
        on_unroutable="log",
        startup_handler=None,
        exchanges=exchanges,
        queues=queues + policy_queues((queue.name for queue in queues), consumers),
        consumers=consumers,
    )


def entries(queues: st.SearchStrategy[str]) -> st.SearchStrategy[ConsumerEntry[ImportRef]]:
    retry = st.fixed_dictionaries(
        {
            "max_attempts": st.integers(1, 12),
            "delays": st.lists(st.sampled_from([0.001, 0.5, 1, 5, 30, 86_400]) | st.floats(0.001, 4e6), min_size=1),
        },
        optional={"parking_queue": names},
    )
    return st.builds(
        lambda ref, queue, count, prefetch, name, values: ConsumerEntry(
            consumer=ref,
            queue=queue,
            consumer_count=count,
            prefetch_count=prefetch,
            on_error=error_policy(name, queue, {**values, "delays": values["delays"][:20]}),
        ),
        st.builds(ImportRef, module=st.just("consumers"), attr=classes),
        queues,
        st.integers(1, 1000),
        st.integers(0, 65_535),
        st.sampled_from(["requeue", "reject", "retry"]),
        retry,
    )


def reordered(service: Service[ImportRef, ImportRef]) -> Service[ImportRef, ImportRef]:
    """The same service, every mapping in it built in the reverse order."""

    def flip(mapping: Mapping[str, Any]) -> dict[str, Any]:
        return dict(reversed(list(mapping.items())))

    def queue(q: Queue) -> Queue:
        bindings = tuple(
            Binding(exchange=b.exchange, routing_key=b.routing_key, arguments=flip(b.arguments)) for b in q.bindings
        )
        return Queue(**{**_fields(q), "arguments": flip(q.arguments), "bindings": bindings})

    exchanges = tuple(Exchange(**{**_fields(e), "arguments": flip(e.arguments)}) for e in service.exchanges)
    return Service(**{**_fields(service), "exchanges": exchanges, "queues": tuple(map(queue, service.queues))})


def _fields(instance: Any) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in instance.__dataclass_fields__}


def both(service: Service[ImportRef, ImportRef]) -> tuple[str, str]:
    return tuple(documents.render(kind, service, "config.yml") for kind in documents.KINDS)  # type: ignore[return-value]


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(service=services())
def test_generated_topologies_give_the_same_documents_whatever_the_dict_order(service: Service[Any, Any]) -> None:
    first = both(service)
    assert both(service) == first
    assert both(reordered(service)) == first
    document = yaml.safe_load(first[0])
    assert all(ref.startswith("#/") for ref in references(document)), "a name became a reference"
    for operation in document["operations"].values():  # every reference points at what exists
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in document["channels"]
        for message in operation["messages"]:
            assert (
                message["$ref"].removeprefix(f"#/channels/{channel}/messages/")
                in document["channels"][channel]["messages"]
            )
    assert len(document["operations"]) == sum(1 + len(consumer.steps) for consumer in topology.build(service).consumers)


def references(data: Any) -> list[str]:
    """Every `$ref` in the document, wherever it is."""
    if isinstance(data, dict):
        own = [str(data["$ref"])] if "$ref" in data else []
        return own + [ref for value in data.values() for ref in references(value)]
    if isinstance(data, list):
        return [ref for item in data for ref in references(item)]
    return []


def test_a_table_in_the_config_never_puts_its_names_as_keys_of_the_document(built: Path) -> None:
    """AsyncAPI tools resolve a `$ref` key anywhere, extensions included: a header named so must not be one."""
    bindings = yaml.safe_load((built / "asyncapi.yaml").read_text())["channels"]["queue_orders"]["x-queue-bindings"]
    assert bindings[0]["arguments"] == [
        {"name": "kind", "value": ["order", "refund"]},
        {"name": "nested", "value": [{"name": "depth", "value": 2}]},
        {"name": "x-match", "value": "all"},
    ]


@INSTALLS
def test_generated_topologies_pass_asyncapis_parser_and_render_with_every_label_intact(
    parser: tools.Checkers, renderer: tools.Checkers, tmp_path: Path
) -> None:
    """Many topologies, then one parser run and one browser for all of them (Chromium takes seconds to start)."""
    generated: dict[str, tuple[Service[Any, Any], str, str]] = {}

    @settings(
        max_examples=int(os.environ.get("DOCUMENTS_EXAMPLES", "12")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(service=services())
    def collect(service: Service[Any, Any]) -> None:
        generated[f"g{len(generated)}"] = (service, *both(service))

    collect()
    with ThreadPoolExecutor(2) as pool:  # node runs each checker on one core: both at once
        validated = pool.submit(assert_valid, parser, {key: texts[1] for key, texts in generated.items()}, tmp_path)
        rendered = pool.submit(assert_renders, renderer, {key: texts[2] for key, texts in generated.items()}, tmp_path)
        validated.result()
        svgs = rendered.result()
    for label, (service, _, mermaid) in generated.items():
        view = topology.build(service)
        shown = node_texts(svgs[label])
        for node in (*view.exchanges, *view.queues):
            expected = "(default exchange)" if node.name == "" else node.name
            assert shown[node.id].startswith(expected), f"{label}: {node.id} shows {shown[node.id]!r}\n{mermaid}"
        for consumer in view.consumers:
            assert shown[consumer.id].startswith(f"{consumer.entry.consumer.attr} ×{consumer.entry.consumer_count}")


@INSTALLS
def test_a_name_yaml_1_2_reads_as_a_number_stays_a_string(parser: tools.Checkers, tmp_path: Path) -> None:
    service = example_service()
    names = ["0800", "1e3", "0o17"]
    renamed = [dataclasses.replace(queue, name=name) for queue, name in zip(service.queues[:3], names, strict=True)]
    service = dataclasses.replace(service, queues=(*renamed, *service.queues[3:]))
    assert_valid(parser, {"numbers": both(service)[0]}, tmp_path)


def example_service() -> Service[ImportRef, ImportRef]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(EXAMPLE)
        result = cli.compile_file("config.yml", [], 60, False)
    assert result.service is not None
    return result.service


def assert_valid(parser: tools.Checkers, texts: dict[str, str], folder: Path) -> None:
    files = {label: folder / f"{label}.yaml" for label in texts}
    for label, path in files.items():
        path.write_text(texts[label])
    report = parser.validate_asyncapi(list(files.values()))
    for label, path in files.items():
        problems = [d for d in report[str(path)] if d["severity"] <= 1 or d["code"] not in ALLOWED_NOTES]
        assert problems == [], f"{label}: {problems}\n{texts[label]}"


def assert_renders(renderer: tools.Checkers, texts: dict[str, str], folder: Path) -> dict[str, str]:
    """Label -> the SVG each text rendered to, or a failure naming Mermaid's error."""
    files = {label: folder / f"{label}.mmd" for label in texts}
    for label, path in files.items():
        path.write_text(texts[label])
    report = renderer.render_mermaid(list(files.values()))
    for label, path in files.items():
        assert report[str(path)] is None, f"{label}: {report[str(path)]}\n{texts[label]}"
    return {label: Path(f"{path}.svg").read_text() for label, path in files.items()}


def node_texts(svg: str) -> dict[str, str]:
    """Node id -> the text the rendered node shows (its lines run together)."""
    shown = {}
    for element in ElementTree.fromstring(svg).iter():
        match = re.search(r"-flowchart-(.+)-\d+$", element.get("id") or "")
        if match and "node" in (element.get("class") or "").split():
            shown[match[1]] = "".join(element.itertext()).replace("\u2060", "")
    return shown
