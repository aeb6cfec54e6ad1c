"""The guard between generated packages and the runtime: one clear refusal, never a TypeError.

What users rely on: a package generated for the interface this runtime runs imports; one
generated for any other is refused at its first runtime import, with a message that names
both sides and says whether to rebuild the package or upgrade the runtime.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import interface
from amqp_dispatcher.runtime.version import VERSION


def test_a_package_for_this_interface_imports() -> None:
    from amqp_dispatcher.runtime.interface import INTERFACE_1  # noqa: F401

    assert interface.INTERFACE in interface.SUPPORTED


@given(st.integers(min_value=0, max_value=10**6).filter(lambda number: number not in interface.SUPPORTED))
def test_a_package_for_any_other_interface_is_refused_in_one_line(number: int) -> None:
    module = importlib.import_module("amqp_dispatcher.runtime.interface")
    with pytest.raises(interface.IncompatiblePackage) as refusal:
        getattr(module, f"INTERFACE_{number}")
    message = str(refusal.value)
    assert "\n" not in message
    assert f"runtime interface {number}," in message and f"amqp-dispatcher {VERSION}" in message
    newer = number > max(interface.SUPPORTED)
    assert ("upgrade the runtime" in message) is newer and ("rebuild the package" in message)


def test_other_names_are_ordinary_missing_attributes() -> None:
    with pytest.raises(AttributeError):
        interface.NOT_A_GUARD  # noqa: B018


# What code generated for interface 1 relies on: the names it imports from the runtime, and the
# fields it passes to each spec class. A runtime that runs interface 1 must still accept them all
# and require nothing more; a change that breaks this needs INTERFACE bumped (interface.py).
GENERATED_FOR_1 = {
    "Service": {
        "name",
        "config_sha256",
        "monkey_patch",
        "heartbeat",
        "shutdown_timeout",
        "startup_timeout",
        "blocking_threshold",
        "on_unroutable",
        "startup_handler",
        "exchanges",
        "queues",
        "consumers",
        "http",
    },
    "ConsumerEntry": {"consumer", "queue", "consumer_count", "prefetch_count", "on_error"},
    "Exchange": {"name", "type", "durable", "auto_delete", "internal", "passive", "arguments"},
    "Queue": {"name", "durable", "auto_delete", "exclusive", "passive", "arguments", "bindings"},
    "Binding": {"exchange", "routing_key", "arguments"},
    "Retry": {"max_attempts", "delays", "delay_queues", "parking_queue"},
    "Requeue": set(),
    "Reject": set(),
    "Http": {"port", "host"},
}
# Interface 2 added Service(processes=...); every other name and field is interface 1's.
GENERATED = {
    1: GENERATED_FOR_1,
    2: {**GENERATED_FOR_1, "Service": GENERATED_FOR_1["Service"] | {"processes"}},
}
# Fields that packages generated earlier may leave out (the runtime defaults them): interface 1's
# first packages had no http.
OPTIONAL = {1: {"Service": {"http"}}, 2: {}}


def test_every_supported_interface_has_its_shape_recorded() -> None:
    assert set(GENERATED) == set(interface.SUPPORTED), "record what the new interface generates in GENERATED"


@pytest.mark.parametrize("number,name", sorted((number, name) for number in GENERATED for name in GENERATED[number]))
def test_the_runtime_still_runs_what_each_interface_generated(number: int, name: str) -> None:
    import dataclasses

    import amqp_dispatcher.runtime as runtime

    assert getattr(interface, f"INTERFACE_{number}") == number
    spec_class = getattr(runtime, name)
    fields = {field.name: field for field in dataclasses.fields(spec_class)}
    passed = GENERATED[number][name]
    assert passed <= set(fields), f"{name} no longer takes {sorted(passed - set(fields))}: bump INTERFACE"
    required = {
        field_name
        for field_name, field in fields.items()
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    assert required <= passed - OPTIONAL[number].get(name, set()), (
        f"{name} now requires {sorted(required - passed)}, which packages of interface {number} do not pass: "
        "give it a default, or bump INTERFACE"
    )
    assert {"main", "run"} <= set(runtime.__all__), "generated __main__.py calls main"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_check_reports_any_manifest_it_cannot_trust_as_findings(manifest: object) -> None:
    """Whatever manifest.json holds, the check gives findings, never a traceback."""
    import json
    import tempfile
    from pathlib import Path

    from amqp_dispatcher.runtime import check

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "manifest.json").write_text(json.dumps(manifest))
        problems = list(check._manifest_problems(Path(folder)))
    assert problems, "a manifest that is not dispatcher-build's always has something to say"
    assert all(isinstance(problem, str) and "\n" not in problem for problem in problems)
