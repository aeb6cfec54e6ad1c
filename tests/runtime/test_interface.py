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
