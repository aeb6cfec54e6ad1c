"""The build pipeline: config bytes in, diagnostics and the package's files out.

Owns the order of the stages, one straight line: source -> validate -> model -> rules ->
imports -> render. Every stage reports into one list, so that one run shows every problem;
the model skips the entries an earlier stage found broken, so that no error cascades. Stages
point their diagnostics at a key or a value of the config; they are placed on the file's text
once, at the end. A file above the reader's size limit is refused before it is decoded.
Knows no stage's codes; writes nothing to disk (output.py does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from amqp_dispatcher.runtime.spec import Service

from . import imports, model, render, rules, source, validate
from .diagnostics import Diagnostic
from .refs import ImportRef


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
    service: Service[ImportRef, ImportRef] | None = None  # set with `files`

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
    text, problem = source.decode(data)
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
    result.diagnostics += validate.validate(document, reported={d.path for d in found if d.path is not None})
    broken = {d.path for d in result.diagnostics if d.is_error and d.path is not None} | document.refused
    built = model.build(document, broken, hashlib.sha256(data).hexdigest())
    result.diagnostics += rules.check(built)
    report = imports.check(
        built, roots=options.roots, timeout=options.import_timeout, memory_mb=options.import_memory_mb
    )
    result.diagnostics += report.diagnostics
    result.diagnostics = _finish(result.diagnostics, document)
    if result.error_count == 0 and not (options.strict and result.diagnostics):
        result.service = built.service
        result.files = render.render(
            built, config_name=base_name(config_name), package=options.package, packages=report.packages
        )
    return result


def _finish(diagnostics: list[Diagnostic], document: source.SourceDocument) -> list[Diagnostic]:
    """Place diagnostics that point at a key or a value, drop repeats, and sort by position."""
    placed = [replace(d, span=document.place(d.anchor)) if d.anchor is not None else d for d in diagnostics]
    unique = {(d.code, d.span, d.message): d for d in placed}
    return sorted(unique.values(), key=Diagnostic.sort_key)


def base_name(config_name: str) -> str:
    """The file name alone: generated output must not depend on where the build ran."""
    return config_name.replace("\\", "/").rsplit("/", 1)[-1]
