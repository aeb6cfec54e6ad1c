"""The layering rules of docs/architecture.md, checked by scanning imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Each foreign library has exactly one importer.
OWNERS = {
    "yaml": {"compiler/source.py"},
    "jsonschema": {"compiler/validate.py"},
    "jinja2": {"compiler/render.py"},
    "prometheus_client": {"runtime/metrics.py"},
    "opentelemetry": {"runtime/tracing.py"},
    "pika": {f"runtime/pika_transport/{name}.py" for name in ("channel", "connection", "frames", "translate")},
    "pamqp": {f"runtime/pamqp_transport/{name}.py" for name in ("channel", "codec", "connection")},
}
BUILD_ONLY = {"yaml", "jsonschema", "jinja2"}


def imports_of(path: Path) -> set[str]:
    """Top-level names of everything a module imports, relative imports resolved to our packages."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x` imports x
    return {name.strip(".") for name in names}


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The module an import names, a relative one resolved against the module's own package."""
    if not node.level:
        return node.module or ""
    package = path.relative_to(ROOT / "src").parent.parts
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module or ""])


PACKAGE = ROOT / "src" / "amqp_dispatcher"


def sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("runtime"), ids=lambda p: p.name)
def test_the_runtime_never_imports_the_build_side(path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top not in BUILD_ONLY, f"{path.name} imports {name}"
        assert not name.startswith("amqp_dispatcher.compiler"), f"{path.name} imports the compiler"
        assert not name.startswith("amqp_dispatcher.schema"), f"{path.name} imports the schema package"


@pytest.mark.parametrize("path", sources("testing"), ids=lambda p: p.name)
def test_the_test_kit_needs_only_the_runtime(path: Path) -> None:
    """It is installed with the runtime, with no extra dependency (pytest only when pytest loads it)."""
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top not in BUILD_ONLY, f"{path.name} imports {name}"
        assert not name.startswith(("amqp_dispatcher.compiler", "amqp_dispatcher.schema")), (
            f"{path.name} imports {name}"
        )
        assert top != "pytest" or path.name == "plugin.py", f"{path.name} imports pytest"


@pytest.mark.parametrize("library,owners", sorted(OWNERS.items()))
def test_each_foreign_library_has_one_importer(library: str, owners: set[str]) -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for folder in ("compiler", "runtime", "schema", "templates", "testing")
        for path in sources(folder)
        if any(name.split(".")[0] == library for name in imports_of(path))
    }
    assert importers <= owners, f"{library} is imported by {sorted(importers - owners)}"


def test_the_import_probe_needs_only_the_standard_library() -> None:
    """It runs in the user's environment, before anything of theirs is known to work."""
    for name in imports_of(PACKAGE / "compiler" / "probe.py"):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top == "__future__", name


def test_importing_the_runtime_loads_no_build_dependency() -> None:
    code = "import sys, amqp_dispatcher.runtime; print(sorted({'yaml', 'jsonschema', 'jinja2'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sources("runtime"), ids=lambda p: p.name)
def test_the_runtime_logs_only_through_loggers_that_escape_what_they_interpolate(path: Path) -> None:
    if path.name == "logs.py":
        return
    assert "logging.getLogger(" not in path.read_text(), f"{path.name}: use logs.get_logger"


TRANSPORTS = (
    "amqp_dispatcher.runtime.pika_transport",
    "amqp_dispatcher.runtime.pamqp_transport",
    "amqp_dispatcher.runtime.memory",
)


def test_above_the_transport_seam_only_transports_py_chooses_a_transport() -> None:
    """Everything else reaches the broker through runtime/transport.py's interface."""
    choosers = {
        str(path.relative_to(PACKAGE))
        for path in sources("runtime")
        if path.parent.name not in ("pika_transport", "pamqp_transport", "memory")
        and any(name.startswith(TRANSPORTS) for name in imports_of(path))
    }
    assert choosers == {"runtime/transports.py"}
