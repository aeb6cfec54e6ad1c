"""A private, throw-away RabbitMQ node with a TLS listener, for ``amqps://`` integration tests.

This module owns everything about that node: the test PKI it generates with ``openssl`` (a CA, a
server certificate signed by it for ``localhost``/``127.0.0.1``, and a second, unrelated CA), the
node's configuration and data files, its start-up and its shutdown. All of it lives in the
``workdir`` given to :func:`start_tls_broker`; nothing is shared with the system broker
(``rabbit@localhost`` on 127.0.0.1:5672) except the machine's ``epmd``. That broker is never
stopped, reconfigured or written to, and on exit the helper checks that it still answers.

Isolation notes (RabbitMQ 3.10 as packaged by Debian):

* ``/usr/sbin/rabbitmq-server`` and ``/usr/sbin/rabbitmqctl`` are a wrapper that, when run as
  root, re-runs the command as the ``rabbitmq`` user through ``su`` (``HOME`` and working
  directory ``/var/lib/rabbitmq``, so the system node's cookie). That user cannot read a pytest
  ``tmp_path``, so the helper calls the unwrapped scripts in ``/usr/lib/rabbitmq/bin`` as the
  current user instead.
* ``HOME`` points into ``workdir``, with an Erlang cookie written by the helper: the node and the
  ``rabbitmqctl`` calls that manage it share a private cookie, and neither reads nor creates any
  other ``.erlang.cookie``.
* Every path RabbitMQ would otherwise take from ``/etc/rabbitmq`` or ``/var/{lib,log}/rabbitmq``
  (``rabbitmq.conf``, ``rabbitmq-env.conf``, ``conf.d``, ``advanced.config``, ``enabled_plugins``,
  Mnesia, logs, pid file) is redirected into ``workdir``, and inherited ``RABBITMQ_*`` and
  ``ERL_*`` variables are dropped.
* ``rabbitmq-server -detached`` sends the VM's stdout to ``/dev/null``, and a broken
  ``rabbitmq.conf`` kills the node before its log file exists; so the VM also gets a kernel logger
  handler writing ``log/boot.log``, which the start-up error quotes in that case.
* The node's VM carries a random token in its environment; the helper finds its VMs by that token
  in ``/proc`` (Linux only), so it can kill them even without a pid file, and never kills a
  process that merely reused a pid. A node this helper starts uses a running ``epmd`` (or starts
  one, which then stays, as usual for Erlang).
* ``workdir/node-env.sh`` holds the node's environment, to inspect it by hand:
  ``(. workdir/node-env.sh && /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" status)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SystemBrokerDisturbedError",
    "TlsBroker",
    "TlsBrokerStartError",
    "start_tls_broker",
]

# The unwrapped scripts; see the module docstring for why not /usr/sbin.
RABBITMQ_BIN = Path(os.environ.get("AMQPD_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))

HOST = "localhost"
SYSTEM_BROKER = ("127.0.0.1", 5672)
EPMD_PORT = 4369  # an inherited ERL_EPMD_PORT is dropped from the node's environment

CERT_DAYS = 3
START_TIMEOUT = 60.0
# Listeners start during boot, so once `rabbit` runs the TLS port works or never will (a listener
# that cannot bind is logged as an error, but the node still reports itself started).
TLS_READY_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0
VM_APPEAR_GRACE = 10.0
LOG_TAIL_LINES = 40
LOG_ERROR_LINES = 15

# Set in the node's environment, so that the VMs this helper started (and only those) can be
# found and killed even if the pid file was never written.
_TOKEN_VAR = "AMQPD_TLS_BROKER_TOKEN"


@dataclass(frozen=True)
class TlsBroker:
    """Where the private node listens, and the CA files a client needs to verify it."""

    host: str
    tls_port: int
    plain_port: int
    ca_file: Path
    other_ca_file: Path
    node_name: str

    @property
    def amqps_url(self) -> str:
        """The guest URL of the TLS listener, without TLS query options."""
        return f"amqps://guest:guest@{self.host}:{self.tls_port}/%2F"


class TlsBrokerStartError(RuntimeError):
    """The private node did not come up; the message ends with the tail of its log."""


class SystemBrokerDisturbedError(RuntimeError):
    """The system broker on 127.0.0.1:5672 answered before the private node ran, but not after."""


@dataclass(frozen=True)
class _Layout:
    """The files and directories of one private node, all under ``workdir``."""

    workdir: Path

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"

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
        return self.log_base / "boot.log"

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

    def main_log(self, node_name: str) -> Path:
        return self.log_base / f"{node_name}.log"


# ---------------------------------------------------------------------------------------------
# Certificates


_CA_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca

[dn]
CN = {cn}

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_SERVER_CONFIG = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = localhost
"""

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def _openssl(*args: str | Path) -> None:
    command = ["openssl", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TlsBrokerStartError(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stderr}")


def _make_ca(certs: Path, name: str, common_name: str) -> tuple[Path, Path]:
    """A self-signed CA: ``(<name>.key, <name>.pem)``."""
    config = certs / f"{name}.cnf"
    config.write_text(_CA_CONFIG.format(cn=common_name))
    key, cert = certs / f"{name}.key", certs / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(CERT_DAYS),
             "-config", config, "-keyout", key, "-out", cert)  # fmt: skip
    return key, cert


def _make_certificates(certs: Path) -> tuple[Path, Path, Path, Path]:
    """Return ``(ca_file, other_ca_file, server_cert, server_key)``."""
    certs.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca(certs, "ca", "amqp-dispatcher test CA")
    _, other_ca_cert = _make_ca(certs, "other-ca", "amqp-dispatcher unrelated test CA")

    server_key, server_csr, server_cert = certs / "server.key", certs / "server.csr", certs / "server.pem"
    server_config, extfile = certs / "server.cnf", certs / "server.ext"
    server_config.write_text(_SERVER_CONFIG)
    extfile.write_text(_SERVER_EXTENSIONS)
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-config", server_config, "-keyout", server_key, "-out", server_csr)  # fmt: skip
    _openssl("x509", "-req", "-in", server_csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
             "-sha256", "-days", str(CERT_DAYS), "-extfile", extfile, "-out", server_cert)  # fmt: skip
    return ca_cert, other_ca_cert, server_cert, server_key


# ---------------------------------------------------------------------------------------------
# Ports and probes


def _free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 a moment ago (all held open while choosing)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _answers_amqp(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether an AMQP 0-9-1 broker there answers the protocol header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # frame type 1: method (connection.start)


def _tls_handshake_error(port: int, ca_file: Path) -> str | None:
    """None if a TLS handshake on 127.0.0.1:``port``, verifying ``localhost`` against ``ca_file``, works."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2.0) as raw,
            context.wrap_socket(raw, server_hostname=HOST),
        ):
            return None
    except OSError as exc:  # ssl.SSLError is an OSError
        return repr(exc)


def _epmd_names() -> set[str]:
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


# ---------------------------------------------------------------------------------------------
# Node configuration and environment


def _plain_path(path: Path) -> str:
    """``path`` as text, if it can go unquoted into rabbitmq.conf and the word-split ERL args."""
    text = str(path)
    if any(c.isspace() or c in "#\"'\\" for c in text):
        raise ValueError(f"the private RabbitMQ node cannot use a path with spaces or quotes: {text!r}")
    return text


def _write_node_files(layout: _Layout, *, plain_port: int, tls_port: int, ca_file: Path, cert: Path, key: Path) -> None:
    for directory in (layout.home, layout.mnesia_base, layout.log_base, layout.conf_d):
        directory.mkdir(parents=True, exist_ok=True)
    layout.config_file.write_text(
        "\n".join(
            [
                f"listeners.tcp.default = {plain_port}",
                f"listeners.ssl.default = {tls_port}",
                f"ssl_options.cacertfile = {_plain_path(ca_file)}",
                f"ssl_options.certfile = {_plain_path(cert)}",
                f"ssl_options.keyfile = {_plain_path(key)}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
                # A nearly full /tmp must not raise the disk alarm and block the tests' publishers.
                "disk_free_limit.absolute = 1MB",
                "log.console = false",
                "log.file.level = info",
                "",
            ]
        )
    )
    layout.enabled_plugins_file.write_text("[].\n")
    layout.env_conf_file.write_text("# Empty on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf out.\n")
    cookie = layout.home / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20).upper())
    cookie.chmod(0o400)  # Erlang refuses a cookie file that others can read


def _node_env(layout: _Layout, *, node_name: str, plain_port: int, dist_port: int, token: str) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RABBITMQ_", "ERL_")) and name != _TOKEN_VAR
    }
    boot_logger = (
        f'[{{handler,amqpd_boot,logger_std_h,#{{config=>#{{file=>"{_plain_path(layout.boot_log)}"}},level=>notice}}}}]'
    )
    own = {
        "HOME": str(layout.home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        _TOKEN_VAR: token,
        "RABBITMQ_NODENAME": node_name,
        "RABBITMQ_NODE_PORT": str(plain_port),
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
    layout.env_script.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in own.items()))
    return {**inherited, **own}


# ---------------------------------------------------------------------------------------------
# Process control


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


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


def _node_pids(layout: _Layout, token: str) -> list[int]:
    """The running VMs this helper started: the pid file's, if it is ours, and any carrying ``token``."""
    candidates = {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    if (pid := _read_pid(layout.pid_file)) is not None:
        candidates.add(pid)  # checked like the others: after a SIGKILL the pid may belong to anyone
    return sorted(pid for pid in candidates if _is_ours(pid, token))


def _kill(layout: _Layout, token: str, grace: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, the node's VMs; return those still running after that."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _node_pids(layout, token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _node_pids(layout, token):
            time.sleep(0.1)
    return _node_pids(layout, token)


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


def _diagnostics(layout: _Layout, node_name: str) -> str:
    """The tail of the node's log, or of the boot log when the node died before opening its log."""
    parts = []
    try:
        slogan = next(
            line for line in layout.crash_dump.read_text(errors="replace").splitlines() if line.startswith("Slogan:")
        )
        parts.append(f"{layout.crash_dump}: {slogan}")
    except (OSError, StopIteration):
        pass
    tail = _log_excerpt(layout.main_log(node_name)) or _log_excerpt(layout.boot_log)
    if tail is None:
        found = sorted(str(p.relative_to(layout.workdir)) for p in layout.log_base.rglob("*"))
        tail = f"(no log file; {layout.log_base} holds {found or 'nothing'})"
    parts.append(tail)
    parts.append(f"(node environment: {layout.env_script})")
    return "\n".join(parts)


class _BootWatch:
    """Fails the start-up, with the node's log, when its VM has died or a deadline has passed."""

    def __init__(self, layout: _Layout, node_name: str, token: str) -> None:
        self.layout, self.node_name, self.token = layout, node_name, token
        self.launched_at = time.monotonic()
        self.deadline = self.launched_at + START_TIMEOUT
        self.seen_vm = False

    def error(self, what: str) -> TlsBrokerStartError:
        return TlsBrokerStartError(
            f"private RabbitMQ node {self.node_name} did not start: {what}\n{_diagnostics(self.layout, self.node_name)}"
        )

    def check(self, waiting_for: str, deadline: float | None = None) -> None:
        if _node_pids(self.layout, self.token):
            self.seen_vm = True
        # `erl -detached` forks the VM: allow it a moment to show up before calling it gone.
        elif self.seen_vm or time.monotonic() - self.launched_at > VM_APPEAR_GRACE:
            raise self.error(f"its Erlang VM exited while waiting for {waiting_for}")
        if time.monotonic() > (deadline or self.deadline):
            raise self.error(f"timed out waiting for {waiting_for}")


def _start_node(layout: _Layout, env: dict[str, str], node_name: str, tls_port: int, ca_file: Path, token: str) -> None:
    """Start the node detached and wait until it runs and its TLS port completes a handshake."""
    watch = _BootWatch(layout, node_name, token)
    launched = subprocess.run(
        [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"],
        env=env,
        cwd=layout.workdir,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if launched.returncode != 0:
        output = (launched.stdout + launched.stderr).strip()
        raise watch.error(f"rabbitmq-server -detached exited {launched.returncode}: {output}")

    # `rabbitmqctl await_startup` fails at once (exit 69) while the node is not registered with
    # epmd yet, so wait for that first; after it, await_startup blocks until `rabbit` has booted.
    short_name = node_name.split("@", 1)[0]
    while short_name not in _epmd_names():
        watch.check("the node to register with epmd")
        time.sleep(0.1)

    remaining = max(1, int(watch.deadline - time.monotonic()))
    waiter = subprocess.Popen(
        [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node_name, "await_startup", "--timeout", str(remaining)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while waiter.poll() is None:
            watch.check("rabbitmqctl await_startup")
            time.sleep(0.2)
        output = waiter.communicate()[0].strip()
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    if waiter.returncode != 0:
        raise watch.error(f"rabbitmqctl await_startup exited {waiter.returncode}: {output}")

    # A TCP connect alone could reach some other socket; a verified handshake is this node's listener.
    tls_deadline = min(watch.deadline, time.monotonic() + TLS_READY_TIMEOUT)
    while (error := _tls_handshake_error(tls_port, ca_file)) is not None:
        watch.check(f"a TLS handshake on port {tls_port} (last attempt: {error})", tls_deadline)
        time.sleep(0.2)


def _ctl_stop(env: dict[str, str], node_name: str) -> bool:
    """Ask the node to stop; whether it acknowledged.

    Not ``stop --idempotent``: that reports success for a node the CLI cannot reach (a cookie
    mismatch, say), and the caller would then wait for a VM that is not stopping.
    """
    try:
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node_name, "stop"],
            env=env,
            capture_output=True,
            timeout=STOP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _stop_node(layout: _Layout, env: dict[str, str], node_name: str, token: str) -> None:
    """Stop the node, politely first; afterwards no VM this helper started is running."""
    if not _node_pids(layout, token):
        return
    if _ctl_stop(env, node_name):  # the VM halts just after `stop` returns
        deadline = time.monotonic() + STOP_TIMEOUT
        while _node_pids(layout, token) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _node_pids(layout, token) and (survivors := _kill(layout, token)):
        raise RuntimeError(f"private RabbitMQ node {node_name} survived SIGKILL: pids {survivors}")


# ---------------------------------------------------------------------------------------------
# Public entry point


@contextlib.contextmanager
def start_tls_broker(workdir: Path) -> Iterator[TlsBroker]:
    """Run a private RabbitMQ node with a TLS listener for the duration of the ``with`` block.

    ``workdir`` (created if missing; its path must hold no spaces or quotes) receives the
    certificates, configuration, data and logs, and is left in place afterwards. The node accepts
    guest/guest from localhost on ``plain_port`` and on ``tls_port``, whose certificate is valid
    for ``localhost`` and ``127.0.0.1`` and signed by ``ca_file``; it does not ask clients for
    certificates. Raises :class:`TlsBrokerStartError`, quoting the node's log, if the node does
    not come up within a minute. On exit the node is stopped (killed if need be); then, if the
    system broker on 127.0.0.1:5672 answered before the node started but no longer does,
    :class:`SystemBrokerDisturbedError` is raised.
    """
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not (RABBITMQ_BIN / tool).is_file():
            raise TlsBrokerStartError(f"{RABBITMQ_BIN / tool} not found (set AMQPD_RABBITMQ_BIN)")
    if shutil.which("openssl") is None:
        raise TlsBrokerStartError("openssl not found on PATH")

    layout = _Layout(Path(workdir).resolve())
    _plain_path(layout.workdir)
    layout.workdir.mkdir(parents=True, exist_ok=True)
    system_broker_was_up = _answers_amqp(*SYSTEM_BROKER)

    ca_file, other_ca_file, server_cert, server_key = _make_certificates(layout.certs)
    plain_port, tls_port, dist_port = _free_ports(3)
    node_name = f"amqpd-tls-{os.getpid()}-{secrets.token_hex(3)}@{HOST}"
    token = secrets.token_hex(16)
    _write_node_files(
        layout, plain_port=plain_port, tls_port=tls_port, ca_file=ca_file, cert=server_cert, key=server_key
    )
    env = _node_env(layout, node_name=node_name, plain_port=plain_port, dist_port=dist_port, token=token)

    try:
        _start_node(layout, env, node_name, tls_port, ca_file, token)
        yield TlsBroker(
            host=HOST,
            tls_port=tls_port,
            plain_port=plain_port,
            ca_file=ca_file,
            other_ca_file=other_ca_file,
            node_name=node_name,
        )
    finally:
        _stop_node(layout, env, node_name, token)
        if system_broker_was_up and not _answers_amqp(*SYSTEM_BROKER):
            raise SystemBrokerDisturbedError(
                f"the system broker on {SYSTEM_BROKER[0]}:{SYSTEM_BROKER[1]} stopped answering "
                f"while private node {node_name} ran"
            )
