"""The build pipeline: config bytes in, diagnostics and the package's files out.

Owns the order of the stages and what each may see: source -> validate -> model -> rules and
imports -> render. Every stage reports into one list, so that one run shows every problem;
a stage skips the entries an earlier stage found broken, so that no error cascades. A file
above the reader's size limit is refused before it is decoded. Writes nothing to disk
(output.py does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from . import imports, model, render, rules, source, validate
from .diagnostics import ConfigPath, Diagnostic, Span, error
from .model import ServiceModel

_VALUE_CODES = {"E103", "E104", "E105", "E106", "E107"}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    roots: Sequence[str] = (".",)
    import_timeout: float = imports.DEFAULT_TIMEOUT
    import_memory_mb: int = imports.DEFAULT_MEMORY_MB  # 0: no limit
    strict: bool = False
    package: str = "service"


@dataclass(slots=True)
class BuildResult:
    config_name: str
    text: str | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: dict[str, str] | None = None
    model: ServiceModel | None = None

    @property
    def error_count(self) -> int:
        return sum(1 for diagnostic in self.diagnostics if diagnostic.is_error)

    def failed(self, *, strict: bool) -> bool:
        return self.files is None or (strict and bool(self.diagnostics))


def build(data: bytes, config_name: str, options: BuildOptions) -> BuildResult:
    """Run every stage; `files` is set only when no error was found."""
    too_large = source.check_size(data)
    if too_large:  # not decoded: the text is only needed for snippets, and E008 has none
        return BuildResult(config_name=config_name, text=None, diagnostics=[too_large])
    text, problem = _decode(data)
    result = BuildResult(config_name=config_name, text=text)
    if problem:
        result.text = data.decode("utf-8", errors="replace")  # for the snippet
        result.diagnostics.append(problem)
        return result
    assert text is not None
    document, found = source.load(text)
    result.diagnostics += found
    if document is None:
        return result
    owned = {d.path for d in found if d.path is not None} | document.refused
    result.diagnostics += _schema_problems(document, owned)
    broken = {d.path for d in result.diagnostics if d.is_error and d.path is not None} | document.refused
    parts = model.build_parts(document, broken)
    result.diagnostics += parts.diagnostics
    result.diagnostics += rules.check(parts, document)
    report = imports.check(
        parts, document, roots=options.roots, timeout=options.import_timeout, memory_mb=options.import_memory_mb
    )
    result.diagnostics += report.diagnostics
    result.diagnostics = _finish(result.diagnostics, document)
    if result.error_count == 0 and not (options.strict and result.diagnostics):
        sha256 = hashlib.sha256(data).hexdigest()
        result.model = model.assemble(document, parts, sha256)
        result.files = render.render(
            result.model, config_name=_base_name(config_name), package=options.package, packages=report.packages
        )
    return result


def _decode(data: bytes) -> tuple[str | None, Diagnostic | None]:
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


def _schema_problems(document: source.SourceDocument, owned: set[ConfigPath]) -> list[Diagnostic]:
    """Schema problems, except where reading the YAML already explained the value better.

    `owned` holds the paths the source stage reported on (an unsupported tag, `.inf`, an unsafe
    character); the document's YAML 1.1 ambiguities are reported here, unless they sit under an
    unknown key. A mapping that lost a key to an unsafe character is not said to miss that key.
    """
    schema = validate.validate(document)
    unknown = {d.path for d in schema if d.code == "E101" and d.path is not None}
    ambiguous = {
        path: diagnostic
        for path, diagnostic in document.ambiguous.items()
        if not any(path[: len(bad)] == bad for bad in unknown)
    }
    owned = owned | set(ambiguous)
    schema = [
        d
        for d in schema
        if not (d.code in _VALUE_CODES and d.path in owned) and not (d.code == "E102" and d.path in document.incomplete)
    ]
    return schema + list(ambiguous.values())


def _finish(diagnostics: list[Diagnostic], document: source.SourceDocument) -> list[Diagnostic]:
    """Place diagnostics that only know their path, drop repeats, and sort by position."""
    placed = [
        replace(d, span=document.key_span(d.path)) if d.span is None and d.path is not None else d for d in diagnostics
    ]
    unique = {(d.code, d.span, d.message): d for d in placed}
    return sorted(unique.values(), key=Diagnostic.sort_key)


def _base_name(config_name: str) -> str:
    """The file name alone: generated output must not depend on where the build ran."""
    return config_name.replace("\\", "/").rsplit("/", 1)[-1]
