"""The generated package's command line: `python -m <package>` runs it, `check` checks it, `plan` plans it.

Owns the arguments a generated `__main__.py` passes on, and what `plan` prints: its text form
(a terraform-like line per object) and its JSON document (docs/plan.md). Running is the
runner's, checking is check.py's, finding the plan plan.py's. Usage errors exit 2 with one line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BrokerError, ConfigurationError, ExitStatus
from .interface import generator_in
from .logs import safe
from .spec import LiveService

if TYPE_CHECKING:
    from .plan import Difference, Plan, Route

USAGE = (
    "usage: python -m {package} [check | plan [--management-url URL] [--format text|json]]\n"
    "  (no argument)  run the service\n"
    "  check          verify, without connecting, that this environment can run it\n"
    "  plan           compare its exchanges, queues and bindings with the broker's, read-only; exit 0 if\n"
    "                 nothing conflicts, 1 if something does, 3 if the broker (or the API) cannot be used"
)
FORMATS = ("text", "json")
DOCUMENT_FORMAT, DOCUMENT_VERSION = "amqp-dispatcher-plan", 1


def main(service: LiveService, arguments: Sequence[str], *, package: str) -> int:
    """Run or check the package whose SERVICE this is; returns the exit status."""
    if not arguments:
        from .runner import run_service  # only running loads gevent and pika

        return run_service(service, generator=generator_in(_folder(package)), worker_command=_this_command(package))
    if list(arguments) == ["check"]:
        from . import interface
        from .check import check

        interface.leave_check_mode()
        return check(service, _folder(package))
    if arguments[0] == "plan":
        from . import interface

        interface.leave_check_mode()  # the package imported: what fails now is plan's own
        return _plan(service, arguments[1:], package)
    if arguments[0] in ("-h", "--help"):
        print(USAGE.format(package=package))
        return ExitStatus.OK
    print(f"{USAGE.format(package=package)}\nunknown arguments: {' '.join(arguments)}", file=sys.stderr)
    return ExitStatus.CONFIG


def _this_command(package: str) -> list[str] | None:
    """The command that started this process, to start each worker of several with; None when the
    package's __main__ is not what runs (main() called from other code), so there is none to repeat.

    `python -m <package>`, and `amqp-dispatcher --config`, which compiles the config and runs the
    package it writes, both run the package's __main__; repeating the interpreter's original
    arguments (its options included) starts the same thing again."""
    running = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(running, "name", None) != f"{package}.__main__" or len(sys.orig_argv) < 2:
        return None
    return [sys.executable, *sys.orig_argv[1:]]


def _folder(package: str) -> Path:
    module = sys.modules[package]
    return Path(module.__file__ or ".").parent


def _plan(service: LiveService, arguments: Sequence[str], package: str) -> int:
    """`plan`: prints the plan on stdout, and a refusal or a setting's problem in one line on stderr."""
    if any(argument in ("-h", "--help") for argument in arguments):
        print(USAGE.format(package=package))
        return ExitStatus.OK
    try:
        url, form = _plan_options(arguments)
    except ValueError as error:
        print(f"{USAGE.format(package=package)}\nplan: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    from .logs import default_logging, quiet_pika
    from .management import Management
    from .plan import make_plan  # only planning and running load gevent and pika
    from .settings import from_environment

    quiet_pika()
    with default_logging():  # a setting's warning, such as variables RABBITMQ_URL overrides
        try:
            settings = from_environment(os.environ, default_heartbeat=service.heartbeat)
            api = Management.from_url(url, settings) if url is not None else None
        except ConfigurationError as error:
            print(f"plan: {safe(str(error))}", file=sys.stderr)
            return ExitStatus.CONFIG
    try:
        plan = make_plan(service, settings, api)
    except BrokerError as error:  # the broker's words included, escaped like every line we print
        print(f"plan: {safe(str(error))}", file=sys.stderr)
        return ExitStatus.BROKER
    sys.stdout.write(render_json(plan) + "\n" if form == "json" else render_text(plan))
    return plan.exit_status()


def _plan_options(arguments: Sequence[str]) -> tuple[str | None, str]:
    """--management-url URL and --format text|json, each as `--name value` or `--name=value`."""
    url, form, rest = None, "text", list(arguments)
    while rest:
        name, equals, value = rest.pop(0).partition("=")
        if name not in ("--management-url", "--format"):
            shown = safe(name) if name.startswith("-") and "@" not in name else "a value"
            raise ValueError(f"unknown argument {shown}; plan takes --management-url URL and --format text|json")
        if not equals:
            if not rest:
                raise ValueError(f"{name} needs a value")
            value = rest.pop(0)
        if name == "--format" and value not in FORMATS:
            raise ValueError(f"--format is text or json, not {safe(value)!r}")
        url, form = (url, value) if name == "--format" else (value, form)
    return url, form


def document(plan: Plan) -> dict[str, Any]:
    """The plan as the JSON document docs/plan.md describes (its keys are a contract: add, never rename)."""
    from .plan import MARKERS, jsonable

    objects = []
    for item in plan.items:
        differences = [{"property": each.property, "broker": jsonable(each.broker), "config": jsonable(each.config),
                        "conflict": each.is_conflict, "reason": each.reason} for each in item.differences]  # fmt: skip
        found = {"kind": item.kind, "name": item.name, "status": item.status, "marker": MARKERS[item.status],
                 "note": item.note, "differences": differences}  # fmt: skip
        if item.route is not None:
            found.update(asdict(item.route), arguments=json.loads(item.route.arguments))
        objects.append(found)
    return {"format": DOCUMENT_FORMAT, "version": DOCUMENT_VERSION, "service": plan.service, "broker": plan.broker,
            "management_api": plan.management, "bindings_listed": plan.management is not None,
            "objects": objects, "summary": plan.counts(), "exit_status": int(plan.exit_status())}  # fmt: skip


def render_json(plan: Plan) -> str:
    return json.dumps(document(plan), indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)


_WORDS = {"create": "will be created", "match": "exists and matches", "conflict": "conflicts",
          "unchecked": "not checked", "unknown": "on the broker, not in the config"}  # fmt: skip
_SUMMARY = {"create": "to create", "match": "matching", "conflict": "in conflict", "unchecked": "not checked",
            "unknown": "unknown binding"}  # fmt: skip
_WITHOUT_API = (
    "Without the management API (--management-url) bindings cannot be listed (the service's are marked ~ where "
    "both ends exist; others are not shown) and policies are not seen."
)


def render_text(plan: Plan) -> str:
    """One line per object, its marker first, what differs under it, then a summary, like terraform."""
    from .plan import MARKERS

    via = f"management API {plan.management}" if plan.management else "no management API"
    lines = [f"plan for {safe(plan.service)} against {safe(plan.broker)} ({safe(via)})", ""]
    labels = [f"{item.kind} {safe(item.name)}{_key_of(item.route)}" for item in plan.items]
    width = min(max(map(len, labels), default=0), 60)
    for item, label in zip(plan.items, labels, strict=True):
        lines.append(f"  {MARKERS[item.status]} {label:<{width}}  {safe(item.note) or _WORDS[item.status]}")
        lines += [_difference_line(difference) for difference in item.differences]
    counts = plan.counts()
    summary = [f"{counts[status]} {_SUMMARY[status]}" for status in MARKERS]
    lines += ["", f"Plan: {', '.join(summary)}{'s' if counts['unknown'] != 1 else ''}."]
    if plan.management is None:
        lines.append(_WITHOUT_API)
    return "\n".join(lines) + "\n"


def _difference_line(difference: Difference) -> str:
    from .plan import shown

    tag = "" if difference.is_conflict else "note: "
    values = f"broker {shown(difference.broker)}, config {shown(difference.config)}: "
    if difference.broker is None and difference.config is None:
        values = ""
    return f"      {tag}{safe(difference.property)}: {values}{safe(difference.reason)}"


def _key_of(route: Route | None) -> str:
    if route is None:
        return ""
    return f" [{safe(route.routing_key)}]" + ("" if route.arguments == "{}" else f" {safe(route.arguments)}")
