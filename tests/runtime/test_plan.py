"""`plan`: RabbitMQ's equivalence and policy rules over generated inputs, the read-only order of
the AMQP checks, what the management API's answers become, and the text and JSON forms."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime import command
from amqp_dispatcher.runtime.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    ConfigurationError,
    DeclarationRefused,
    HandshakeRefused,
)
from amqp_dispatcher.runtime.management import (
    EXCHANGE_ARGUMENTS,
    POLICY_PRECEDENCE,
    QUEUE_ARGUMENTS,
    ApiInspector,
    Management,
    differing,
    equivalent,
)
from amqp_dispatcher.runtime.plan import MARKERS, Difference, Item, Plan, make_plan, route_of
from amqp_dispatcher.runtime.settings import parse_url
from amqp_dispatcher.runtime.spec import Binding, Exchange, Queue
from tests.conftest import ROOT
from tests.runtime.rig import service

SETTINGS = parse_url("amqp://guest:secret-pw@broker/vh", default_heartbeat=20)

# ---------------------------------------------------------------------------------------------
# RabbitMQ's rule, transcribed from rabbit_misc:assert_args_equivalence1/4 and
# assert_field_equivalence/4 (3.10.8), over typed values: (AMQP type, Erlang term), the term
# tagged with its Erlang kind so that Python's 1 == 1.0 == True cannot blur them.

INTEGER_TYPES = ("byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint")


def type_class(amqp_type: str) -> str:
    return "int" if amqp_type in INTEGER_TYPES else "float" if amqp_type in ("float", "double") else amqp_type


def erlang_equal(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Erlang's ==: numbers by value across integers and floats; any other term exactly."""
    if a[0] in ("integer", "float") and b[0] in ("integer", "float"):
        return bool(a[1] == b[1])
    return a == b


def rabbitmq_accepts(key: str, existing: tuple[str, Any] | None, declared: tuple[str, Any] | None) -> bool:
    """Whether RabbitMQ accepts the redeclaration: the oracle the rules are held to."""
    if existing == declared:  # {Same, Same}: the same term, type included
        return True
    if existing is not None and declared is not None:
        (old_type, old), (new_type, new) = existing, declared
        if type_class(old_type) == type_class(new_type) and erlang_equal(old, new):
            return True
        return old == new  # assert_field_equivalence(OrigVal, NewVal): the raw terms, exactly
    classic = ("longstr", ("binary", b"classic"))
    return key == "x-queue-type" and {existing, declared} == {None, classic}


def term(amqp_type: str, value: Any) -> tuple[str, Any]:
    if amqp_type in INTEGER_TYPES:
        return "integer", value
    if amqp_type in ("float", "double"):
        return "float", value
    if amqp_type in ("longstr", "binary"):
        return "binary", value.encode() if isinstance(value, str) else value
    return "atom", {True: "true", False: "false", None: "undefined"}[value]


# Typed values as the broker holds them (any integer type for an integer: another client's choice),
# with small pools so that equal values come up often.
BROKER_VALUES = st.one_of(
    st.tuples(st.sampled_from(INTEGER_TYPES), st.integers(0, 3)),
    st.tuples(st.sampled_from(("float", "double")), st.sampled_from([0.0, 1.0, 2.5])),
    st.tuples(st.just("longstr"), st.sampled_from(["", "a", "classic", "quorum"])),
    st.tuples(st.just("binary"), st.sampled_from([b"", b"a", b"classic"])),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("void"), st.none()),
)


def as_pika_sends(value: Any) -> str:
    """The AMQP type pika gives a Python value of the config."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    return {float: "double", str: "longstr", bytes: "binary", type(None): "void"}[type(value)]


KEYS = st.sampled_from(["x-queue-type", "x-max-length", "x-dead-letter-exchange", "x-unknown", "alternate-exchange"])


@settings(max_examples=500)
@given(key=KEYS, existing=st.none() | BROKER_VALUES, declared=st.none() | BROKER_VALUES.map(lambda typed: typed[1:]))
def test_an_argument_conflicts_exactly_when_rabbitmq_says_so(key: str, existing: Any, declared: Any) -> None:
    """None stands for an absent argument. Python values carry no AMQP integer width (JSON and
    configs do not either), and RabbitMQ compares integers by value, whatever their width."""
    present = {}
    typed_existing = typed_declared = None
    if existing is not None:
        present["existing"] = existing[1]
        typed_existing = (existing[0], term(*existing))
    if declared is not None:
        [value] = declared
        present["declared"] = value
        typed_declared = (as_pika_sends(value), term(as_pika_sends(value), value))
    assert equivalent(key, **present) == rabbitmq_accepts(key, typed_existing, typed_declared)


TABLES = st.dictionaries(
    st.sampled_from([*QUEUE_ARGUMENTS["classic"][:4], "x-queue-type", "x-foo", "x-delivery-limit"]),
    BROKER_VALUES.map(lambda typed: typed[1]),
    max_size=4,
)


@given(kind=st.sampled_from(sorted(QUEUE_ARGUMENTS)), existing=TABLES, declared=TABLES)
def test_only_the_arguments_a_queue_type_compares_can_conflict(kind: str, existing: Any, declared: Any) -> None:
    keys = QUEUE_ARGUMENTS[kind]
    found = differing(keys, existing, declared)
    assert set(found) <= set(keys)
    assert found == [key for key in keys if not equivalent(key, *_present(existing, declared, key))]
    assert differing(keys, existing, existing) == []


def _present(existing: dict[str, Any], declared: dict[str, Any], key: str) -> tuple[Any, ...]:
    from amqp_dispatcher.runtime.management import _ABSENT

    return existing.get(key, _ABSENT), declared.get(key, _ABSENT)


@pytest.mark.parametrize(
    ("existing", "declared", "same"),
    [
        (100, 100, True),  # an int from one client, a long from another: equal by value
        (2**40, 2**40, True),
        (1, 1.0, False),  # an integer never equals a float
        (1, True, False),
        ("a", b"a", True),  # longstr and binary: both Erlang binaries
        (None, "", False),
    ],
)
def test_numbers_compare_by_value_within_their_class(existing: Any, declared: Any, same: bool) -> None:
    assert equivalent("x-max-length", existing, declared) is same


def test_an_absent_queue_type_equals_classic_only() -> None:
    assert equivalent("x-queue-type", declared="classic")
    assert equivalent("x-queue-type", "classic")
    assert not equivalent("x-queue-type", declared="quorum")
    assert not equivalent("x-max-length", declared=1)


def test_exchanges_compare_the_alternate_exchange_only() -> None:
    assert differing(EXCHANGE_ARGUMENTS, {"alternate-exchange": "a", "x-foo": 1}, {"x-foo": 2}) == [
        "alternate-exchange"
    ]


def test_a_quorum_queue_compares_no_priority_and_a_classic_one_no_delivery_limit() -> None:
    assert "x-max-priority" not in QUEUE_ARGUMENTS["quorum"]
    assert "x-delivery-limit" not in QUEUE_ARGUMENTS["classic"]
    assert POLICY_PRECEDENCE["quorum"]["overflow"] == "policy"
    assert POLICY_PRECEDENCE["classic"]["overflow"] == "argument"


# ---------------------------------------------------------------------------------------------
# The management API's answers, judged


class FakeApi:
    """Management's read methods over dicts, as the API would answer."""

    def __init__(self, queues: dict[str, Any], exchanges: dict[str, Any], bindings: list[dict[str, Any]]) -> None:
        self.queues, self.exchanges, self.bindings = queues, exchanges, bindings

    def queue(self, name: str) -> Any:
        return self.queues.get(name)

    def exchange(self, name: str) -> Any:
        return self.exchanges.get(name)

    def queue_bindings(self, name: str) -> list[dict[str, Any]]:
        return [binding for binding in self.bindings if binding["destination"] == name]

    def exchange_bindings(self, name: str) -> list[dict[str, Any]]:
        return [binding for binding in self.bindings if binding["source"] == name]


def api_queue(name: str, arguments: dict[str, Any], **fields: Any) -> dict[str, Any]:
    found = {"name": name, "durable": True, "auto_delete": False, "exclusive": False, "type": "classic"}
    return {**found, "arguments": arguments, **fields}


def binding(source: str, destination: str, key: str, **arguments: Any) -> dict[str, Any]:
    return {
        "source": source,
        "destination": destination,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": arguments,
    }


def queue(name: str, *bindings: Binding, passive: bool = False, **arguments: Any) -> Queue:
    return Queue(
        name=name,
        durable=True,
        auto_delete=False,
        exclusive=False,
        passive=passive,
        arguments=arguments,
        bindings=bindings,
    )


def exchange(name: str, kind: str = "topic", **arguments: Any) -> Exchange:
    return Exchange(
        name=name, type=kind, durable=True, auto_delete=False, internal=False, passive=False, arguments=arguments
    )


def judge(fake: FakeApi, queue_: Queue) -> Item:
    return ApiInspector(fake).queue(queue_)  # type: ignore[arg-type]


def test_an_operator_policy_below_the_configured_max_length_is_a_conflict() -> None:
    fake = FakeApi(
        {
            "q": api_queue(
                "q", {"x-max-length": 100}, operator_policy="cap", effective_policy_definition={"max-length": 10}
            )
        },
        {},
        [],
    )
    item = judge(fake, queue("q", **{"x-max-length": 100}))
    assert item.status == "conflict"
    [difference] = item.differences
    assert (difference.property, difference.broker, difference.config) == ("max-length", 10, 100)
    assert "operator policy 'cap'" in difference.reason and "the lower value wins" in difference.reason


def test_a_policy_above_the_configured_value_changes_nothing() -> None:
    fake = FakeApi(
        {
            "q": api_queue(
                "q", {"x-max-length": 5}, operator_policy="cap", effective_policy_definition={"max-length": 10}
            )
        },
        {},
        [],
    )
    assert judge(fake, queue("q", **{"x-max-length": 5})).status == "match"


def test_a_policy_dead_letter_exchange_the_argument_overrides_is_a_note() -> None:
    """RabbitMQ uses the queue's x-dead-letter-exchange over a policy's (res_arg): no conflict."""
    fake = FakeApi(
        {
            "q": api_queue(
                "q",
                {"x-dead-letter-exchange": "mine"},
                policy="dl",
                effective_policy_definition={"dead-letter-exchange": "theirs"},
            )
        },
        {},
        [],
    )
    item = judge(fake, queue("q", **{"x-dead-letter-exchange": "mine"}))
    assert item.status == "match"
    assert [(each.property, each.is_conflict) for each in item.differences] == [("dead-letter-exchange", False)]


def test_a_quorum_queue_takes_a_policys_overflow_over_its_argument() -> None:
    fake = FakeApi(
        {
            "q": api_queue(
                "q",
                {"x-queue-type": "quorum", "x-overflow": "reject-publish"},
                type="quorum",
                policy="p",
                effective_policy_definition={"overflow": "drop-head"},
            )
        },
        {},
        [],
    )
    item = judge(fake, queue("q", **{"x-queue-type": "quorum", "x-overflow": "reject-publish"}))
    assert item.status == "conflict"
    assert "the policy wins" in item.differences[0].reason


def test_every_difference_the_api_shows_is_named_not_only_the_first() -> None:
    fake = FakeApi({"q": api_queue("q", {"x-max-length": 1, "x-message-ttl": 5}, durable=False)}, {}, [])
    item = judge(fake, queue("q", **{"x-max-length": 2, "x-message-ttl": 6}))
    assert [each.property for each in item.differences] == ["durable", "x-message-ttl", "x-max-length"]


def test_bindings_the_config_does_not_know_are_listed_and_not_conflicts() -> None:
    fake = FakeApi(
        {"q": api_queue("q", {})},
        {
            "shop": {
                "name": "shop",
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        },
        [
            binding("", "q", "q"),
            binding("shop", "q", "order.*"),
            binding("shop", "q", "stray.#"),
            binding("shop", "other", "x", **{"x-match": "all"}),
        ],
    )
    planned = _plan(
        fake,
        service((), (queue("q", Binding(exchange="shop", routing_key="order.*", arguments={})),), (exchange("shop"),)),
    )
    lines = [(item.kind, item.name, item.status) for item in planned.items]
    assert lines == [
        ("exchange", "shop", "match"),
        ("queue", "q", "match"),
        ("binding", "shop -> q", "match"),
        ("binding", "shop -> other", "unknown"),
        ("binding", "shop -> q", "unknown"),
    ]
    assert planned.exit_status() == 0


def test_a_passive_queue_that_is_missing_is_a_conflict_and_one_that_exists_is_only_checked() -> None:
    fake = FakeApi({"there": api_queue("there", {"x-max-length": 1})}, {}, [])
    assert judge(fake, queue("missing", passive=True)).status == "conflict"
    there = judge(fake, queue("there", passive=True, **{"x-max-length": 2}))
    assert (there.status, there.differences) == ("match", ())
    assert "checked" in there.note


def _plan(fake: FakeApi, planned: Any) -> Plan:
    class Api:
        def check_access(self) -> None: ...

        def inspector(self) -> ApiInspector:
            return ApiInspector(fake)  # type: ignore[arg-type]

        def describe(self) -> str:
            return "http://guest@api"

    return make_plan(planned, SETTINGS, Api(), FakeTransport(FakeBroker()))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Over AMQP: the broker judges, and plan only ever declares what exists, right after seeing it


class FakeBroker:
    """Exchanges and queues by name, with RabbitMQ's answers to declarations, and a log of them."""

    def __init__(self, **entities: Exchange | Queue) -> None:
        self.entities: dict[str, Exchange | Queue] = dict(entities)
        self.calls: list[tuple[int, str, bool]] = []  # (channel, name, passive)
        self.created: list[str] = []
        self.channels = 0


class FakeChannel:
    def __init__(self, broker: FakeBroker) -> None:
        broker.channels += 1
        self.broker, self.number, self.is_open = broker, broker.channels, True

    def declare_exchange(self, entity: Exchange) -> None:
        self._declare(entity)

    def declare_queue(self, entity: Queue) -> None:
        self._declare(entity)

    def _declare(self, entity: Exchange | Queue) -> None:
        assert self.is_open, "a declaration on a channel the broker closed"
        self.broker.calls.append((self.number, entity.name, entity.passive))
        existing = self.broker.entities.get(entity.name)
        if existing is None and entity.passive:
            self._refuse(404, f"NOT_FOUND - no queue '{entity.name}' in vhost 'vh'")
        elif existing is None:
            self.broker.created.append(entity.name)
            self.broker.entities[entity.name] = entity
        elif not entity.passive and existing != entity:
            self._refuse(
                406,
                f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{entity.name}' in "
                f"vhost 'vh': received '{str(entity.durable).lower()}' but current is "
                f"'{str(existing.durable).lower()}'",
            )

    def _refuse(self, code: int, text: str) -> None:
        self.is_open = False
        raise DeclarationRefused(f"{code} {text}", reply_code=code, reply_text=text)

    def close(self) -> None:
        self.is_open = False


class FakeTransport:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    def connect(self, settings: Any, *, name: str, blocked_timeout: float | None = None) -> Any:
        broker = self.broker

        class Connection:
            is_open = True

            def channel(self) -> FakeChannel:
                return FakeChannel(broker)

            def close(self, timeout: float = 10.0) -> None:
                self.is_open = False

        return Connection()


def amqp_plan(broker: FakeBroker, *queues: Queue, exchanges: tuple[Exchange, ...] = ()) -> Plan:
    return make_plan(service((), queues, exchanges), SETTINGS, None, FakeTransport(broker))  # type: ignore[arg-type]


def test_over_amqp_a_declaration_follows_only_a_passive_check_that_found_it_on_the_same_channel() -> None:
    durable = queue("kept")
    broker = FakeBroker(kept=durable, other=queue("other").__class__(**{**_fields(queue("other")), "durable": False}))
    planned = amqp_plan(broker, durable, queue("other"), queue("new"), queue("gone", passive=True))
    assert [item.status for item in planned.items] == ["match", "conflict", "create", "conflict"]
    assert broker.created == []
    by_channel: dict[int, list[bool]] = {}
    for number, _, passive in broker.calls:
        by_channel.setdefault(number, []).append(passive)
    assert sorted(by_channel.values()) == [[True], [True], [True, False], [True, False]]  # one channel each
    conflict = planned.items[1].differences[0]
    assert (conflict.property, conflict.broker, conflict.config) == ("durable", False, True)
    assert planned.exit_status() == 1


def _fields(entity: Queue) -> dict[str, Any]:
    return {name: getattr(entity, name) for name in entity.__slots__}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "declared", "broker"),
    [  # RabbitMQ 3.10's words: typed only when one side is absent
        ("inequivalent arg 'x-max-length' for queue 'q' in vhost 'v': received '100' but current is '50'", 100, 50),
        ("inequivalent arg 'x-max-length' for queue 'q' in vhost 'v': received none but current is "
         "the value '50' of type 'long'", None, 50),
        ("inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost 'v': received the value 'dlx' of type "
         "'longstr' but current is none", "dlx", None),
        ("inequivalent arg 'durable' for queue 'it's' in vhost 'v': received 'true' but current is 'false'",
         True, False),
        ("inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost 'v': received '1' but current is '2'",
         "1", "2"),
    ],
)  # fmt: skip
def test_a_406_names_the_property_and_the_brokers_value(text: str, declared: Any, broker: Any) -> None:
    from amqp_dispatcher.runtime.plan import _refused

    key = text.split("'")[1]
    found = _refused(
        DeclarationRefused(text, reply_code=406, reply_text=f"PRECONDITION_FAILED - {text}"), {key: declared}
    )
    assert (found.property, found.broker, found.config, found.is_conflict) == (key, broker, declared, True)


def test_over_amqp_bindings_are_not_checked_unless_an_end_will_be_created() -> None:
    bound = queue("q", Binding(exchange="shop", routing_key="k", arguments={}))
    assert [item.status for item in amqp_plan(FakeBroker(), bound, exchanges=(exchange("shop"),)).items] == [
        "create",
        "create",
        "create",
    ]
    existing = FakeBroker(q=bound, shop=exchange("shop"))
    items = amqp_plan(existing, bound, exchanges=(exchange("shop"),)).items
    assert [item.status for item in items] == ["match", "match", "unchecked"]


def test_a_binding_to_an_exchange_neither_declared_nor_existing_is_a_conflict() -> None:
    bound = queue("q", Binding(exchange="elsewhere", routing_key="", arguments={}))
    items = amqp_plan(FakeBroker(q=bound), bound).items
    assert items[-1].status == "conflict" and items[-1].differences[0].property == "exchange"


# ---------------------------------------------------------------------------------------------
# The forms

NAMES = st.text(max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
DIFFERENCES = st.builds(
    Difference, property=NAMES, broker=VALUES, config=VALUES, reason=NAMES, is_conflict=st.booleans()
)
ROUTES = st.builds(
    route_of,
    NAMES,
    NAMES,
    st.sampled_from(["queue", "exchange"]),
    NAMES,
    st.dictionaries(st.text(max_size=3), VALUES, max_size=2),
)
ITEMS = st.builds(
    Item,
    kind=st.sampled_from(["exchange", "queue", "binding"]),
    name=NAMES,
    status=st.sampled_from(list(MARKERS)),
    note=NAMES,
    differences=st.lists(DIFFERENCES, max_size=2).map(tuple),
    route=st.none() | ROUTES,
)
PLANS = st.builds(
    Plan, service=NAMES, broker=NAMES, management=st.none() | NAMES, items=st.lists(ITEMS, max_size=5).map(tuple)
)


@given(PLANS)
def test_the_json_document_always_parses_and_round_trips(plan: Plan) -> None:
    text = command.render_json(plan)
    parsed = json.loads(text)
    assert parsed == command.document(plan)
    assert json.dumps(parsed, indent=2, sort_keys=True, ensure_ascii=True) == text  # stable: nothing lost or added
    assert parsed["format"] == "amqp-dispatcher-plan" and parsed["version"] == 1
    assert sum(parsed["summary"].values()) == len(parsed["objects"])
    assert parsed["exit_status"] == (1 if any(item.status == "conflict" for item in plan.items) else 0)
    for found, item in zip(parsed["objects"], plan.items, strict=True):
        assert (found["kind"], found["name"], found["status"], found["marker"]) == (
            item.kind,
            item.name,
            item.status,
            MARKERS[item.status],
        )


def documented_schema() -> dict[str, Any]:
    text = (ROOT / "docs" / "plan.md").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    return schema


@given(PLANS)
def test_the_json_document_is_what_docs_plan_md_says(plan: Plan) -> None:
    jsonschema.validate(json.loads(command.render_json(plan)), documented_schema())


@given(PLANS)
def test_the_text_has_one_printable_line_per_object_and_a_summary(plan: Plan) -> None:
    lines = command.render_text(plan).splitlines()
    assert all(line.isprintable() for line in lines)
    objects = [line for line in lines if line[:4] in {f"  {marker} " for marker in MARKERS.values()}]
    assert len(objects) == len(plan.items)
    assert any(line.startswith("Plan: ") for line in lines)


# ---------------------------------------------------------------------------------------------
# The command line and the HTTP side


@pytest.mark.parametrize(
    "arguments",
    [["plan", "--format"], ["plan", "--format", "yaml"], ["plan", "--bogus"], ["plan", "http://u:pw@h"]],
)
def test_usage_errors_exit_2_without_echoing_a_url(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main(service((), ()), arguments, package="svc") == 2
    error = capsys.readouterr().err
    assert "usage: python -m svc" in error and "pw" not in error


def test_a_bad_environment_or_url_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RABBITMQ_URL", "http://nope")
    assert command.main(service((), ()), ["plan"], package="svc") == 2
    monkeypatch.setenv("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:1/")
    assert command.main(service((), ()), ["plan", "--management-url=ftp://u:pw@x"], package="svc") == 2
    error = capsys.readouterr().err
    assert "plan: RABBITMQ_URL" in error and "--management-url must start with" in error and "pw" not in error


def test_the_api_uses_the_urls_credentials_or_else_the_amqp_ones_and_never_shows_a_password() -> None:
    own = Management.from_url("https://ops:p%40ss@rabbit.example:15671/mgmt/", SETTINGS)
    assert own.describe() == "https://ops@rabbit.example:15671/mgmt"
    borrowed = Management.from_url("http://rabbit.example:15672", SETTINGS)
    assert borrowed.describe() == "http://guest@rabbit.example:15672"
    for bad in ("rabbit:15672", "http://", "http://h:99999", "http://h/?x=1", "http://h:1/my prefix", "http://h/\x1b"):
        with pytest.raises(ConfigurationError) as refused:
            Management.from_url(bad, SETTINGS)
        assert "secret-pw" not in str(refused.value)


class Answers(BaseHTTPRequestHandler):
    """A stand-in API: /api/whoami by the Authorization header, a redirect, and a non-JSON page."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Answers.seen.append(self.path)
        authorized = self.headers.get("Authorization") == "Basic Z3Vlc3Q6c2VjcmV0LXB3"  # guest:secret-pw
        if self.path == "/redirect/api/whoami":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        elif self.path == "/text/api/whoami" or authorized:
            self.send_response(200)
        else:
            self.send_response(401)
        self.end_headers()
        self.wfile.write(b"<html>" if self.path.startswith("/text") else b"{}")

    def log_message(self, *_: Any) -> None: ...


@pytest.fixture
def http_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_api_answers_become_our_errors(http_api: str) -> None:
    Management.from_url(http_api, SETTINGS).check_access()
    with pytest.raises(AccessRefused):
        Management.from_url(http_api.replace("//", "//guest:wrong@"), SETTINGS).check_access()
    Answers.seen.clear()
    with pytest.raises(BrokerUnreachable, match="redirects"):
        Management.from_url(f"{http_api}/redirect", SETTINGS).check_access()
    assert Answers.seen == ["/redirect/api/whoami"]  # not followed: it would carry the credentials
    with pytest.raises(BrokerError, match="unexpectedly"):
        Management.from_url(f"{http_api}/text", SETTINGS).check_access()
    with pytest.raises(BrokerUnreachable, match="cannot reach"):
        Management.from_url("http://127.0.0.1:1", SETTINGS).check_access()
    with pytest.raises(HandshakeRefused, match="is it an https port"):
        Management.from_url(http_api.replace("http:", "https:"), SETTINGS).check_access()


def test_a_port_that_answers_in_another_protocol_is_unreachable_not_a_traceback() -> None:
    """The AMQP port given as the management URL: the broker answers with the AMQP header."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_amqp() -> None:
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(b"AMQP\x00\x00\x09\x01")
        connection.close()

    thread = threading.Thread(target=answer_amqp, daemon=True)
    thread.start()
    try:
        with pytest.raises(BrokerUnreachable, match=r"did not answer in HTTP .*15672"):
            Management.from_url(f"http://127.0.0.1:{listener.getsockname()[1]}", SETTINGS).check_access()
    finally:
        thread.join(5)
        listener.close()
