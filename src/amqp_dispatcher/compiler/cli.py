"""`dispatcher-build`: the command line of the compiler.

Owns arguments, exit statuses (`BuildStatus`) and where output goes: diagnostics to stderr in
text format, to stdout as JSON or GitHub annotations.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from amqp_dispatcher.runtime.version import VERSION
from amqp_dispatcher.schema import schema_text

from . import deploy, documents, output, report
from .imports import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from .pipeline import BuildOptions, BuildResult, build


class BuildStatus(enum.IntEnum):
    """How dispatcher-build ends: the compiler's own table, apart from the service's
    (`amqp_dispatcher.runtime.errors.ExitStatus`), since CI reads it as pass or fail."""

    OK = 0  # built, or up to date
    INVALID = 1  # config errors, a stale package with --check, or warnings with --strict
    USAGE = 2  # the command line, or a file it names, is wrong
    INTERNAL = 3  # a bug in dispatcher-build


class UsageError(Exception):
    """A problem with the command line or the files it names; exit status 2."""


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0)
    try:
        return _dispatch(arguments, out, err)
    except UsageError as exc:
        err.write(f"dispatcher-build: error: {exc}\n")
        return BuildStatus.USAGE
    except output.OutputError as exc:
        err.write(f"dispatcher-build: error: {exc}\n")
        return BuildStatus.USAGE
    except Exception:  # noqa: BLE001 - last resort: a bug in dispatcher-build, not in the config
        err.write(f"dispatcher-build {VERSION}: internal error, please report it:\n{traceback.format_exc()}")
        return BuildStatus.INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatcher-build",
        description="Check an amqp-dispatcher config and compile it into a frozen Python service package.",
        epilog=f"Exit status: {BuildStatus.OK:d} built or up to date, {BuildStatus.INVALID:d} config errors or stale "
        f"package, {BuildStatus.USAGE:d} usage error, {BuildStatus.INTERNAL:d} internal error.",
    )
    parser.add_argument("config", nargs="?", help="the YAML configuration, e.g. config.yml")
    parser.add_argument("-o", "--output", metavar="DIR", help="the package directory to write, e.g. service/")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if DIR is not what a build would write"
    )
    parser.add_argument(
        "--deploy",
        metavar="DIR",
        help="also write a Dockerfile, a systemd unit and Kubernetes manifests into DIR (checked too with --check)",
    )
    parser.add_argument(
        "--asyncapi",
        metavar="FILE",
        help="also write an AsyncAPI 3.0 document of the service to FILE, e.g. asyncapi.yaml (checked with --check)",
    )
    parser.add_argument(
        "--graph",
        metavar="FILE",
        help="also write a Mermaid flowchart of the topology to FILE, e.g. topology.mmd (checked with --check)",
    )
    parser.add_argument(
        "--format", choices=report.FORMATS, default="text", help="how to print problems (default: text)"
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="also import modules from DIR (repeatable); the current directory always is",
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument(
        "--import-timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time allowed to import the configured modules (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--import-memory",
        type=_megabytes,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"memory allowed to import the configured modules, in MiB; 0: no limit (default: {DEFAULT_MEMORY_MB})",
    )
    parser.add_argument("--print-schema", action="store_true", help="print the JSON Schema of the config and exit")
    parser.add_argument("--version", action="version", version=f"dispatcher-build {VERSION}")
    return parser


def _dispatch(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if arguments.print_schema:
        out.write(schema_text())
        return BuildStatus.OK
    if not arguments.config:
        raise UsageError("name the config file: dispatcher-build config.yml -o service/")
    if not arguments.output:
        raise UsageError("name the output package with -o, e.g. -o service/")
    target = Path(arguments.output)
    package = target.absolute().name
    if not package.isidentifier():
        raise UsageError(
            f"the output directory's name {package!r} must be a Python package name, since it runs as python -m NAME"
        )
    deploy_target = Path(arguments.deploy) if arguments.deploy else None
    if deploy_target is not None and deploy.overlaps(deploy_target, target):
        raise UsageError(f"--deploy {deploy_target}: choose a folder apart from the package folder -o {target}")
    wanted = _documents(arguments, target, deploy_target)
    result = compile_file(
        arguments.config,
        arguments.path,
        arguments.import_timeout,
        arguments.strict,
        package,
        import_memory_mb=arguments.import_memory,
    )
    _print_diagnostics(result, arguments.format, out, err)
    if result.failed(strict=arguments.strict):
        if arguments.format == "text":
            err.write(f"{report.summary(result.diagnostics, result.config_name)}; nothing written\n")
        return BuildStatus.INVALID
    assert result.files is not None and result.service is not None
    outputs = [(result.files, target, False)]
    if deploy_target is not None:
        outputs.append((_deploy_files(arguments, result, deploy_target), deploy_target, True))
    texts = [(kind, path, documents.render(kind, result.service, arguments.config)) for kind, path in wanted]
    if arguments.check:
        rebuild = " ".join(
            [f"dispatcher-build <config> -o {target}"]
            + ([f"--deploy {deploy_target}"] if deploy_target else [])
            + [f"{kind.option} {path}" for kind, path in wanted]
        )
        statuses = [
            _check(files, path, out, err, deploy=is_deploy, rebuild=rebuild) for files, path, is_deploy in outputs
        ]
        statuses += [_check_document(text, path, out, err, rebuild=rebuild) for _, path, text in texts]
        return max(statuses)
    for _, path, is_deploy in outputs:  # before writing any: all are written, or none
        output.check_replaceable(path.absolute(), deploy=is_deploy)
    for kind, path, _ in texts:
        output.check_file_replaceable(path, kind)
    for files, path, is_deploy in outputs:
        output.write(files, path, deploy=is_deploy)
    for kind, path, text in texts:
        output.write_file(text, path, kind)
    if arguments.format == "text":
        out.write(f"built {arguments.output} from {result.config_name}{_counts(result)}\n")
        if deploy_target is not None:
            out.write(f"wrote {arguments.deploy}: {', '.join(sorted(outputs[1][0]))}\n")
        for _, path, _ in texts:
            out.write(f"wrote {path}\n")
    return BuildStatus.OK


def _documents(
    arguments: argparse.Namespace, target: Path, deploy_target: Path | None
) -> list[tuple[documents.Kind, Path]]:
    """The documents asked for, each with its file; raises UsageError for a file inside a folder
    that the build replaces whole, the config itself, or one file asked for twice."""
    asked = [(documents.ASYNCAPI, arguments.asyncapi), (documents.GRAPH, arguments.graph)]
    wanted = [(kind, Path(value)) for kind, value in asked if value]
    folders = [("the package folder -o", target)]
    if deploy_target is not None:
        folders.append(("the deploy folder --deploy", deploy_target))
    for kind, path in wanted:
        where = _real(path)
        for name, folder in folders:
            if where.is_relative_to(_real(folder)):
                raise UsageError(
                    f"{kind.option} {path}: choose a file outside {name} {folder}, which is replaced whole"
                )
        if where == _real(Path(arguments.config)):
            raise UsageError(f"{kind.option} {path}: that is the config; choose another file, e.g. {kind.example}")
    if len(wanted) == 2 and _real(wanted[0][1]) == _real(wanted[1][1]):
        raise UsageError(f"--asyncapi and --graph name the same file {wanted[0][1]}; give each its own")
    return wanted


def _real(path: Path) -> Path:
    """The path with `..` and symbolic links resolved, so that no spelling hides where it leads."""
    return Path(os.path.realpath(path))


def _deploy_files(arguments: argparse.Namespace, result: BuildResult, target: Path) -> dict[str, str]:
    assert result.service is not None
    roots = (os.getcwd(), *arguments.path)
    try:
        return deploy.build(
            result.service, config=Path(arguments.config), package=Path(arguments.output), target=target, roots=roots
        )
    except deploy.LayoutError as exc:
        raise UsageError(str(exc)) from exc


def compile_file(
    config: str,
    paths: Sequence[str],
    timeout: float,
    strict: bool,
    package: str = "service",
    *,
    import_memory_mb: int = DEFAULT_MEMORY_MB,
) -> BuildResult:
    """Read the config and build it in memory; raises UsageError if it cannot be read."""
    try:
        data = Path(config).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {config}: {exc.strerror or exc}") from exc
    for path in paths:
        if not os.path.isdir(path):
            raise UsageError(f"--path {path}: no such directory")
    options = BuildOptions(
        roots=(os.getcwd(), *paths),
        import_timeout=timeout,
        import_memory_mb=import_memory_mb,
        strict=strict,
        package=package,
    )
    return build(data, config, options)


def _megabytes(text: str) -> int:
    value = int(text) if text.isascii() and text.isdigit() else -1
    if not 0 <= value <= _MAX_MEGABYTES:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of MiB from 0 (no limit) to {_MAX_MEGABYTES:,}, got {text[:40]!r}"
        )
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= _MAX_SECONDS:  # NaN fails this too
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0, at most {_MAX_SECONDS:g}, got {text[:40]!r}"
        )
    return value


# Bounds of the probe's options: a day, and a terabyte (past them, the platform's limits overflow).
_MAX_SECONDS = 86_400.0
_MAX_MEGABYTES = 1_048_576


def _print_diagnostics(result: BuildResult, fmt: str, out: TextIO, err: TextIO) -> None:
    if fmt == "json":
        out.write(report.as_json(result.diagnostics, result.config_name) + "\n")
    elif fmt == "github":
        if result.diagnostics:
            out.write(report.github(result.diagnostics, result.config_name) + "\n")
    elif result.diagnostics:
        err.write(report.text(result.diagnostics, result.config_name, result.text) + "\n")


def _check(files: dict[str, str], target: Path, out: TextIO, err: TextIO, *, deploy: bool, rebuild: str) -> int:
    comparison = output.compare(files, target, what="the deployment files" if deploy else "the package")
    if comparison.is_current:
        out.write(f"{target} is up to date\n")
        return BuildStatus.OK
    err.write(f"{target} is stale: {'; '.join(comparison.reasons)}\n")
    if comparison.diff:
        err.write(comparison.diff)
    err.write(f"rebuild it: {rebuild}\n")
    return BuildStatus.INVALID


def _check_document(text: str, path: Path, out: TextIO, err: TextIO, *, rebuild: str) -> int:
    comparison = output.compare_file(text, path)
    if comparison.is_current:
        out.write(f"{path} is up to date\n")
        return BuildStatus.OK
    err.write(f"{path} is stale: {'; '.join(comparison.reasons)}\n{comparison.diff}rebuild it: {rebuild}\n")
    return BuildStatus.INVALID


def _counts(result: BuildResult) -> str:
    service = result.service
    if service is None:  # pragma: no cover
        return ""
    counts = [
        (len(service.consumers), "consumer"),
        (len(service.queues), "queue"),
        (len(service.exchanges), "exchange"),
    ]
    text = ", ".join(f"{count} {noun}{'s' if count != 1 else ''}" for count, noun in counts)
    warnings = len(result.diagnostics)
    return f" ({text})" + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else "")


if __name__ == "__main__":
    main()
