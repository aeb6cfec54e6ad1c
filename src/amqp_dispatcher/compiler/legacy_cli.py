"""`amqp-dispatcher`: the original command, on top of the compiler.

`amqp-dispatcher --validate --config config.yml` runs every check of `dispatcher-build` and
writes nothing. `amqp-dispatcher --config config.yml` compiles the config with the same checks,
then replaces this process with the generated service, exactly as `python -m service` would
run it (so that monkey-patching, when configured, still comes first). `amqp-dispatcher parked
ls|replay` lists or replays what the config's retry policies parked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from amqp_dispatcher.runtime.errors import BrokerError, ConfigurationError, ExitStatus, PublishError
from amqp_dispatcher.runtime.logs import safe
from amqp_dispatcher.runtime.settings import ConnectionSettings, from_environment
from amqp_dispatcher.runtime.spec import Retry
from amqp_dispatcher.runtime.version import VERSION

from . import output, report
from .cli import UsageError, compile_file
from .imports import DEFAULT_TIMEOUT

_PACKAGE = "_amqp_dispatcher_service"
# --validate answers as the original's did: 0 valid, 1 not (an unreadable file included). Every
# other answer of this command is the service's table, ExitStatus.
VALID, INVALID = 0, 1


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.connection is not None:
        sys.stderr.write(
            f"amqp-dispatcher: --connection {arguments.connection} is ignored: amqp-dispatcher 0.x chose between "
            "haigha and pika with it, and this version always uses pika; remove it\n"
        )
    if arguments.command == "parked":
        return _parked(arguments)
    try:
        result = compile_file(arguments.config, arguments.path, DEFAULT_TIMEOUT, strict=False, package=_PACKAGE)
    except UsageError as exc:
        sys.stderr.write(f"amqp-dispatcher: error: {exc}\n")
        return INVALID if arguments.validate else ExitStatus.CONFIG
    if result.diagnostics:
        sys.stderr.write(report.text(result.diagnostics, result.config_name, result.text) + "\n")
    if result.files is None:
        sys.stderr.write(f"{report.summary(result.diagnostics, result.config_name)}\n")
        return INVALID if arguments.validate else ExitStatus.CONFIG
    if arguments.validate:
        sys.stdout.write(f"{result.config_name} is valid\n")
        return VALID
    _exec_service(result.files, arguments.path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqp-dispatcher",
        usage="amqp-dispatcher [--config FILE] [--validate] [--path DIR]\n"
        "       amqp-dispatcher parked {ls,replay} [--config FILE] [--queue QUEUE] [--limit N]",
        description="Run the consumers of an amqp-dispatcher config (compiled in memory), or --validate it.",
    )
    parser.add_argument("--config", default="config.yml", help="the YAML configuration (default: config.yml)")
    parser.add_argument("--validate", action="store_true", help="check the config and exit: 0 valid, 1 invalid")
    parser.add_argument("--path", action="append", default=[], metavar="DIR", help="also import modules from DIR")
    # amqp-dispatcher 0.3 to 0.12 chose the client library with it; accepted, and ignored with a line.
    parser.add_argument("--connection", metavar="LIBRARY", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"amqp-dispatcher {VERSION}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="parked", required=False)
    parked = commands.add_parser(
        "parked",
        help="list or replay the messages that on_error: retry parked",
        description="List the messages in the parking queues of a config (leaving them there), or move them back "
        "to the queue they failed in. Connection settings come from RABBITMQ_URL and the like, as for the service.",
    )
    parked.add_argument("action", choices=("ls", "replay"), help="ls: list; replay: move back to the work queue")
    parked.add_argument("--config", default="config.yml", help="the YAML configuration (default: config.yml)")
    parked.add_argument("--queue", metavar="QUEUE", help="only the parking queue of this work queue")
    parked.add_argument("--limit", type=int, default=None, metavar="N", help="at most N messages (ls: 20, replay: all)")
    parked.add_argument("--path", action="append", default=[], metavar="DIR", help="also import modules from DIR")
    return parser


def _parked(arguments: argparse.Namespace) -> int:
    """`parked ls|replay`: the parking queues come from the config, the connection from the environment."""
    try:
        result = compile_file(arguments.config, arguments.path, DEFAULT_TIMEOUT, strict=False, package=_PACKAGE)
    except UsageError as exc:
        sys.stderr.write(f"amqp-dispatcher: error: {exc}\n")
        return ExitStatus.CONFIG
    service = result.service
    if service is None:
        sys.stderr.write(report.text(result.diagnostics, result.config_name, result.text) + "\n")
        return ExitStatus.CONFIG
    lots = {
        (consumer.on_error.parking_queue, consumer.queue): str(consumer.consumer)
        for consumer in service.consumers
        if isinstance(consumer.on_error, Retry) and arguments.queue in (None, consumer.queue)
    }
    if not lots:
        which = f"for queue {arguments.queue!r} " if arguments.queue else ""
        sys.stderr.write(f"amqp-dispatcher: no consumer {which}has on_error: retry, so nothing is parked\n")
        return ExitStatus.CONFIG
    try:
        settings = from_environment(os.environ, default_heartbeat=service.heartbeat)
        for (parking_queue, work_queue), consumer in sorted(lots.items()):
            _parked_one(arguments.action, settings, parking_queue, work_queue, consumer, arguments.limit)
    except ConfigurationError as exc:
        sys.stderr.write(f"amqp-dispatcher: error: {exc}\n")
        return ExitStatus.CONFIG
    except (BrokerError, PublishError) as exc:  # refused, unreachable, or the work queue is gone
        sys.stderr.write(f"amqp-dispatcher: error: {exc}\n")
        return ExitStatus.BROKER
    return ExitStatus.OK


def _parked_one(
    action: str, settings: ConnectionSettings, parking_queue: str, work_queue: str, consumer: str, limit: int | None
) -> None:
    from amqp_dispatcher.runtime import parked  # gevent and pika, only for this command

    if action == "replay":
        moved, kept = parked.replay(settings, parking_queue, work_queue, limit if limit is not None else sys.maxsize)
        sys.stdout.write(f"{parking_queue}: replayed {moved} message{'s' * (moved != 1)} to {work_queue}\n")
        if kept:
            sys.stdout.write(
                f"{parking_queue}: left {kept} message{'s' * (kept != 1)} parked: {'their' if kept != 1 else 'its'} "
                "headers could not be decoded (x-dispatcher-undecodable), so no consumer can take "
                f"{'them' if kept != 1 else 'it'}\n"
            )
        return
    count, messages = parked.list_parked(settings, parking_queue, limit if limit is not None else 20)
    sys.stdout.write(f"{parking_queue} ({consumer} on {work_queue}): {count} message{'s' * (count != 1)}\n")
    for number, message in enumerate(messages, 1):
        sys.stdout.write(f"  {number}. {safe(message.describe())}\n")  # headers are the message's: escaped
    if count > len(messages):
        sys.stdout.write(f"  ... and {count - len(messages)} more (--limit N shows more)\n")


def _exec_service(files: dict[str, str], paths: Sequence[str]) -> NoReturn:
    """Write the package where restarts reuse it, then become `python -m` of it."""
    digest = hashlib.sha256("".join(files[name] for name in sorted(files)).encode()).hexdigest()[:16]
    root = _package_home() / digest
    output.write(files, root / _PACKAGE)
    bootstrap = (
        "import runpy, sys\n"
        "sys.path[1:1] = sys.argv[1:]\n"
        "del sys.argv[1:]\n"
        f"runpy.run_module({_PACKAGE!r}, run_name='__main__', alter_sys=True)\n"
    )
    extra = [str(root), *(os.path.abspath(path) for path in paths)]
    os.execv(sys.executable, [sys.executable, "-c", bootstrap, *extra])


def _package_home() -> Path:
    """Where the packages this command compiles are kept, so that a restart reuses them: a folder
    of this user's that no one else can write to, since the command then runs what it finds
    there. Without one (a read-only home), a fresh private temporary folder."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "amqp-dispatcher"
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = home.lstat()
    except OSError:
        return Path(tempfile.mkdtemp(prefix="amqp-dispatcher-"))
    if stat.S_ISLNK(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        return Path(tempfile.mkdtemp(prefix="amqp-dispatcher-"))  # not safely ours: use a private one
    return home


if __name__ == "__main__":
    main()
