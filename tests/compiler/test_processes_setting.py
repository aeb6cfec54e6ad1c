"""`processes:` in the config: whatever is written there, the build and the runtime agree.

What users rely on: a value the build accepts is one the runtime runs (a number of processes,
or auto), and any other is one error on its line, never a traceback nor a package that fails
at start.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.compiler import cli
from amqp_dispatcher.runtime import processes

MODULES = Path(__file__).parent / "golden" / "_modules"
CONFIG = "processes: {value}\nconsumers:\n  - consumer: goldmods.good:OrderConsumer\n    queue: orders\n"

values = st.one_of(
    st.integers(min_value=-5, max_value=400),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.sampled_from(["auto", "AUTO", "Auto", " auto", "2", "many", "", "1e3"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ", max_size=6),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values)
def test_what_the_build_accepts_the_runtime_runs_and_the_rest_is_one_error(
    tmp_path_factory: pytest.TempPathFactory, value: object
) -> None:
    folder = tmp_path_factory.mktemp("processes")
    (folder / "config.yml").write_text(CONFIG.format(value=json.dumps(value)), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    arguments = [str(folder / "config.yml"), "-o", str(folder / "service"), "--path", str(MODULES)]
    status = cli.run(arguments, stdout=out, stderr=err)
    if status == cli.BuildStatus.OK:
        written = int(value) if isinstance(value, float) else value  # the schema's integer takes 2.0: written 2
        assert f"processes={json.dumps(written)}," in (folder / "service" / "__init__.py").read_text()
        assert 1 <= processes.wanted(written, {}) <= processes.MAXIMUM  # type: ignore[arg-type]
    else:
        assert status == cli.BuildStatus.INVALID, err.getvalue()
        lines = [line for line in err.getvalue().splitlines() if "error[" in line]
        assert len(lines) == 1 and "config.yml:1:12: error[E10" in lines[0], err.getvalue()
        assert "Traceback" not in err.getvalue()
