"""Private, throw-away RabbitMQ nodes on loopback, for tests that stop, kill or reconfigure a broker.

This module owns one node's life: its configuration and data files, its environment, its start-up
(detached, then waiting until `rabbit` runs), stopping it, killing its VM, and explaining a node
that did not start (the tail of its log). What a node is for (a TLS listener, a cluster) belongs
to its callers: tls_broker.py and cluster_broker.py. Nothing is shared with the system broker
(``rabbit@localhost`` on 127.0.0.1:5672) except the machine's ``epmd``; that broker is never
stopped, reconfigured or written to, and :func:`system_broker_kept` checks that it still answers.

Isolation notes (RabbitMQ 3.10 as packaged by Debian):

* ``/usr/sbin/rabbitmq-server`` and ``/usr/sbin/rabbitmqctl`` are a wrapper that, when run as
  root, re-runs the command as the ``rabbitmq`` user through ``su`` (``HOME`` and working
  directory ``/var/lib/rabbitmq``, so the system node's cookie). That user cannot read a pytest
  ``tmp_path``, so the nodes run the unwrapped scripts in ``/usr/lib/rabbitmq/bin`` as the
  current user instead.
* ``HOME`` points into the node's ``workdir``, with an Erlang cookie chosen by the caller: the
  node and the ``rabbitmqctl`` calls that manage it share a private cookie (the nodes of one
  cluster share one), and neither reads nor creates any other ``.erlang.cookie``.
* Every path RabbitMQ would otherwise take from ``/etc/rabbitmq`` or ``/var/{lib,log}/rabbitmq``
  (``rabbitmq.conf``, ``rabbitmq-env.conf``, ``conf.d``, ``advanced.config``, ``enabled_plugins``,
  Mnesia, logs, pid file) is redirected into ``workdir``, and inherited ``RABBITMQ_*`` and
  ``ERL_*`` variables are dropped.
* ``rabbitmq-server -detached`` sends the VM's stdout to ``/dev/null``, and a broken
  ``rabbitmq.conf`` kills the node before its log file exists; so the VM also gets a kernel logger
  handler writing ``log/boot.log``, which the start-up error quotes in that case.
* The node's VM carries a random token in its environment; its VMs are found by that token in
  ``/proc`` (Linux only), so they can be killed even without a pid file, and a process that
  merely reused a pid is never killed. A node uses a running ``epmd`` (or starts one, which then
  stays, as usual for Erlang).
* ``workdir/node-env.sh`` holds the node's environment, to inspect it by hand:
  ``(. workdir/node-env.sh && /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" status)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The unwrapped scripts; see the module docstring for why not /usr/sbin.
RABBITMQ_BIN = Path(os.environ.get("AMQPD_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))

HOST = "localhost"
SYSTEM_BROKER = ("127.0.0.1", 5672)
EPMD_PORT = 4369  # an inherited ERL_EPMD_PORT is dropped from the node's environment

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
VM_APPEAR_GRACE = 10.0
LOG_TAIL_LINES = 40
LOG_ERROR_LINES = 15

# Set in the node's environment, so that the VMs a PrivateNode started (and only those) can be
# found and killed even if the pid file was never written.
_TOKEN_VAR = "AMQPD_PRIVATE_NODE_TOKEN"


class NodeStartError(RuntimeError):
    """A private node did not come up; the message ends with the tail of its log."""


class SystemBrokerDisturbedError(RuntimeError):
    """The system broker on 127.0.0.1:5672 answered before the private nodes ran, but not after."""


def missing_tools() -> list[str]:
    """The RabbitMQ scripts a private node needs that are not installed."""
    return [
        str(RABBITMQ_BIN / tool) for tool in ("rabbitmq-server", "rabbitmqctl") if not (RABBITMQ_BIN / tool).is_file()
    ]


def require_tools(what: str) -> None:
    """Skip the test when RabbitMQ's scripts are missing, naming them; in CI, fail instead, since
    there the machine is meant to have them."""
    import pytest

    if missing := missing_tools():
        message = f"{what} needs RabbitMQ's scripts: {', '.join(missing)} not found"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def new_cookie() -> str:
    return secrets.token_hex(20).upper()


def node_name(role: str) -> str:
    """A node name no other run (nor the system node) uses: ``amqpd-<role>-<pid>-<random>@localhost``."""
    return f"amqpd-{role}-{os.getpid()}-{secrets.token_hex(3)}@{HOST}"


# ---------------------------------------------------------------------------------------------
# Ports and probes


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 a moment ago (all held open while choosing)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def answers_amqp(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether an AMQP 0-9-1 broker there answers the protocol header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # frame type 1: method (connection.start)


def epmd_names() -> set[str]:
    """The short node names registered with the local epmd (its NAMES_REQ); empty if it is down."""
    try:
        with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=2.0) as sock:
            sock.sendall(b"\x00\x01n")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError:
        return set()
    # The answer: epmd's port (4 bytes), then lines "name <name> at port <port>".
    lines = b"".join(chunks)[4:].decode(errors="replace").splitlines()
    return {line.split()[1] for line in lines if line.startswith("name ")}


@contextlib.contextmanager
def system_broker_kept(what: str) -> Iterator[None]:
    """Raise SystemBrokerDisturbedError if the system broker answered before the block but not after."""
    was_up = answers_amqp(*SYSTEM_BROKER)
    try:
        yield
    finally:
        if was_up and not answers_amqp(*SYSTEM_BROKER):
            raise SystemBrokerDisturbedError(
                f"the system broker on {SYSTEM_BROKER[0]}:{SYSTEM_BROKER[1]} stopped answering while {what} ran"
            )


def plain_path(path: Path) -> str:
    """``path`` as text, if it can go unquoted into rabbitmq.conf and the word-split ERL args."""
    text = str(path)
    if any(c.isspace() or c in "#\"'\\" for c in text):
        raise ValueError(f"the private RabbitMQ node cannot use a path with spaces or quotes: {text!r}")
    return text


# ---------------------------------------------------------------------------------------------
# Files and environment


@dataclass(frozen=True)
class Layout:
    """The files and directories of one private node, all under ``workdir``."""

    workdir: Path

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def mnesia_base(self) -> Path:
        return self.workdir / "mnesia"

    @property
    def log_base(self) -> Path:
        return self.workdir / "log"

    @property
    def boot_log(self) -> Path:
        return self.workdir / "log" / "boot.log"

    @property
    def conf_d(self) -> Path:
        return self.workdir / "conf.d"

    @property
    def config_file(self) -> Path:
        return self.workdir / "rabbitmq.conf"

    @property
    def env_conf_file(self) -> Path:
        return self.workdir / "rabbitmq-env.conf"

    @property
    def advanced_config_file(self) -> Path:
        return self.workdir / "advanced.config"  # never created; overrides /etc/rabbitmq's

    @property
    def enabled_plugins_file(self) -> Path:
        return self.workdir / "enabled_plugins"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "rabbitmq.pid"

    @property
    def env_script(self) -> Path:
        return self.workdir / "node-env.sh"

    @property
    def crash_dump(self) -> Path:
        return self.workdir / "erl_crash.dump"  # the VM's working directory is workdir

    def main_log(self, name: str) -> Path:
        return self.log_base / f"{name}.log"


def _write_files(layout: Layout, *, port: int, cookie: str, config: Sequence[str], plugins: Sequence[str]) -> None:
    for directory in (layout.home, layout.mnesia_base, layout.log_base, layout.conf_d):
        directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"listeners.tcp.default = {port}",
        *config,
        # A nearly full /tmp must not raise the disk alarm and block the tests' publishers.
        "disk_free_limit.absolute = 1MB",
        "log.console = false",
        "log.file.level = info",
    ]
    layout.config_file.write_text("\n".join(lines) + "\n")
    # Plugin names are Erlang atoms: written bare, so only names of plain lowercase words are taken.
    for plugin in plugins:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", plugin):
            raise ValueError(f"not a RabbitMQ plugin name: {plugin!r}")
    layout.enabled_plugins_file.write_text(f"[{','.join(plugins)}].\n")
    layout.env_conf_file.write_text("# Empty on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf out.\n")
    cookie_file = layout.home / ".erlang.cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o400)  # Erlang refuses a cookie file that others can read


def _environment(layout: Layout, *, name: str, port: int, dist_port: int, token: str) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RABBITMQ_", "ERL_")) and key != _TOKEN_VAR
    }
    boot_logger = (
        f'[{{handler,amqpd_boot,logger_std_h,#{{config=>#{{file=>"{plain_path(layout.boot_log)}"}},level=>notice}}}}]'
    )
    own = {
        "HOME": str(layout.home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        _TOKEN_VAR: token,
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        # 3.10 takes this with or without ".conf"; a path that does not exist is silently ignored.
        "RABBITMQ_CONFIG_FILE": str(layout.config_file),
        "RABBITMQ_CONFIG_FILES": str(layout.conf_d),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(layout.advanced_config_file),
        "RABBITMQ_CONF_ENV_FILE": str(layout.env_conf_file),
        "RABBITMQ_MNESIA_BASE": str(layout.mnesia_base),
        "RABBITMQ_LOG_BASE": str(layout.log_base),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(layout.enabled_plugins_file),
        "RABBITMQ_PID_FILE": str(layout.pid_file),
        # Like the system node (its rabbitmq-env.conf): distribution on loopback only. The logger
        # handler catches what the node says before its own log file exists. No spaces inside a
        # term: the start script word-splits this variable.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
            f"-kernel inet_dist_use_interface {{127,0,0,1}} -kernel logger {boot_logger}"
        ),
    }
    layout.env_script.write_text("".join(f"export {key}={shlex.quote(value)}\n" for key, value in own.items()))
    return {**inherited, **own}


# ---------------------------------------------------------------------------------------------
# Processes


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited, its parent just has not reaped it


def _is_ours(pid: int, token: str) -> bool:
    """Whether ``pid`` is a running Erlang VM whose environment carries ``token``."""
    proc = Path(f"/proc/{pid}")
    try:
        if not os.readlink(proc / "exe").endswith("beam.smp"):
            return False
        environ = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{_TOKEN_VAR}={token}".encode() in environ and _running(pid)


# The first line of an error report, not its indented continuation lines: in the node's log
# "<date> <time> [error] <0.123.0> Text", in the boot log "<date>T<time> error: Text".
_ERROR_LINE = re.compile(r"^\S+(?: \S+)? (?:\[error\] <[^>]*>|error:) \S")


def _log_excerpt(path: Path) -> str | None:
    """The first line of the first error reports in a node log, then its last lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [
        line if len(line) <= 400 else f"{line[:250]} … {line[-150:]}" for line in lines if _ERROR_LINE.match(line)
    ][:LOG_ERROR_LINES]
    parts = []
    if errors:
        parts.append(f"first errors in {path}:\n" + "\n".join(errors))
    parts.append(f"last {min(len(lines), LOG_TAIL_LINES)} lines of {path}:\n" + "\n".join(lines[-LOG_TAIL_LINES:]))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# A node


class PrivateNode:
    """One private node: its files under ``workdir``, its environment, its VM.

    Created stopped; ``start`` (or ``launch`` then ``wait_started``, to boot several at once)
    brings it up, ``stop`` and ``kill`` take it down, and it may start again on its data.
    ``config`` holds extra rabbitmq.conf lines (listeners, TLS, cluster formation), and ``plugins``
    the plugins to enable (none by default; the node's own enabled-plugins file, never the system's).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        name: str,
        port: int,
        dist_port: int,
        cookie: str,
        config: Sequence[str] = (),
        plugins: Sequence[str] = (),
    ) -> None:
        self.layout = Layout(Path(workdir).resolve())
        plain_path(self.layout.workdir)
        self.name, self.port = name, port
        self._token = secrets.token_hex(16)
        _write_files(self.layout, port=port, cookie=cookie, config=config, plugins=plugins)
        self.env = _environment(self.layout, name=name, port=port, dist_port=dist_port, token=self._token)
        self._launched_at: float | None = None
        self._seen_vm = False

    def __repr__(self) -> str:
        return f"<PrivateNode {self.name} :{self.port} {'running' if self.pids() else 'stopped'}>"

    @property
    def short_name(self) -> str:
        return self.name.split("@", 1)[0]

    def pids(self) -> list[int]:
        """The running VMs of this node: the pid file's, if it is ours, and any carrying the token."""
        candidates = {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
        with contextlib.suppress(OSError, ValueError):
            candidates.add(int(self.layout.pid_file.read_text().strip()))  # checked like the others
        return sorted(pid for pid in candidates if _is_ours(pid, self._token))

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <node> args...``; its output. Raises RuntimeError if it fails."""
        command = [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {shlex.join(args)} on {self.name} failed: {result.stderr or result.stdout}"
            )
        return result.stdout

    # Start-up

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        """``rabbitmq-server -detached``: returns while the node boots."""
        self._launched_at, self._seen_vm = time.monotonic(), False
        launched = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"],
            env=self.env,
            cwd=self.layout.workdir,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if launched.returncode != 0:
            output = (launched.stdout + launched.stderr).strip()
            raise self.start_error(f"rabbitmq-server -detached exited {launched.returncode}: {output}")

    def wait_started(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until `rabbit` runs on the node (launched by ``launch``); NodeStartError if its VM
        dies or ``timeout`` passes."""
        assert self._launched_at is not None, "launch() first"
        deadline = time.monotonic() + timeout
        # `rabbitmqctl await_startup` fails at once (exit 69) while the node is not registered with
        # epmd yet, so wait for that first; after it, await_startup blocks until `rabbit` has booted.
        while self.short_name not in epmd_names():
            self.check_booting("the node to register with epmd", deadline)
            time.sleep(0.1)
        remaining = max(1, int(deadline - time.monotonic()))
        waiter = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "await_startup", "--timeout", str(remaining)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            while waiter.poll() is None:
                self.check_booting("rabbitmqctl await_startup", deadline)
                time.sleep(0.2)
            output = waiter.communicate()[0].strip()
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
        if waiter.returncode != 0:
            raise self.start_error(f"rabbitmqctl await_startup exited {waiter.returncode}: {output}")

    def check_booting(self, waiting_for: str, deadline: float) -> None:
        """NodeStartError, with the node's log, if its VM has died or ``deadline`` has passed."""
        if self.pids():
            self._seen_vm = True
        # `erl -detached` forks the VM: allow it a moment to show up before calling it gone.
        elif self._seen_vm or time.monotonic() - (self._launched_at or 0.0) > VM_APPEAR_GRACE:
            raise self.start_error(f"its Erlang VM exited while waiting for {waiting_for}")
        if time.monotonic() > deadline:
            raise self.start_error(f"timed out waiting for {waiting_for}")

    def start_error(self, what: str) -> NodeStartError:
        return NodeStartError(f"private RabbitMQ node {self.name} did not start: {what}\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        """The tail of the node's log, or of the boot log when the node died before opening its log."""
        layout, parts = self.layout, []
        with contextlib.suppress(OSError, StopIteration):
            lines = layout.crash_dump.read_text(errors="replace").splitlines()
            parts.append(f"{layout.crash_dump}: {next(line for line in lines if line.startswith('Slogan:'))}")
        tail = _log_excerpt(layout.main_log(self.name)) or _log_excerpt(layout.boot_log)
        if tail is None:
            found = sorted(str(p.relative_to(layout.workdir)) for p in layout.log_base.rglob("*"))
            tail = f"(no log file; {layout.log_base} holds {found or 'nothing'})"
        parts.append(tail)
        parts.append(f"(node environment: {layout.env_script})")
        return "\n".join(parts)

    # Shutdown

    def stop(self) -> None:
        """Stop the node, politely first; afterwards none of its VMs runs."""
        if not self.pids():
            return
        if self._ctl_stop():  # the VM halts just after `stop` returns
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        if self.pids() and (survivors := self._signal_all((signal.SIGTERM, signal.SIGKILL))):
            raise RuntimeError(f"private RabbitMQ node {self.name} survived SIGKILL: pids {survivors}")

    def kill(self) -> None:
        """SIGKILL the node's VM at once, as a crash would, and wait until it is gone."""
        if survivors := self._signal_all((signal.SIGKILL,)):
            raise RuntimeError(f"private RabbitMQ node {self.name} survived SIGKILL: pids {survivors}")

    def _ctl_stop(self) -> bool:
        """Ask the node to stop; whether it acknowledged.

        Not ``stop --idempotent``: that reports success for a node the CLI cannot reach (a cookie
        mismatch, say), and the caller would then wait for a VM that is not stopping.
        """
        try:
            self.ctl("stop", timeout=STOP_TIMEOUT)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True

    def _signal_all(self, signals: Sequence[signal.Signals], grace: float = 10.0) -> list[int]:
        """Send each signal in turn to the node's VMs, waiting for them to go; those still running."""
        for sig in signals:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.pids():
                time.sleep(0.05)
        return self.pids()
