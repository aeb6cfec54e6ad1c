"""A private, throw-away RabbitMQ node with a TLS listener, for ``amqps://`` integration tests.

This module owns the TLS side of that node: the test PKI it generates with ``openssl`` (a CA, a
server certificate signed by it for ``localhost``/``127.0.0.1``, and a second, unrelated CA), the
TLS listener's configuration, and waiting until that listener completes a verified handshake.
The node itself (its files, isolation from the system broker, start-up and shutdown) is a
private_node.PrivateNode; all of it lives in the ``workdir`` given to :func:`start_tls_broker`.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .private_node import (
    HOST,
    NodeStartError,
    PrivateNode,
    SystemBrokerDisturbedError,
    free_ports,
    missing_tools,
    new_cookie,
    node_name,
    plain_path,
    system_broker_kept,
)

__all__ = [
    "SystemBrokerDisturbedError",
    "TlsBroker",
    "TlsBrokerStartError",
    "start_tls_broker",
]

CERT_DAYS = 3
# Listeners start during boot, so once `rabbit` runs the TLS port works or never will (a listener
# that cannot bind is logged as an error, but the node still reports itself started).
TLS_READY_TIMEOUT = 10.0

# The node's start-up errors, under the name this module has always raised.
TlsBrokerStartError = NodeStartError


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
# The node


def _tls_config(tls_port: int, ca_file: Path, cert: Path, key: Path) -> list[str]:
    return [
        f"listeners.ssl.default = {tls_port}",
        f"ssl_options.cacertfile = {plain_path(ca_file)}",
        f"ssl_options.certfile = {plain_path(cert)}",
        f"ssl_options.keyfile = {plain_path(key)}",
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
    ]


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


def _wait_for_tls(node: PrivateNode, tls_port: int, ca_file: Path) -> None:
    # A TCP connect alone could reach some other socket; a verified handshake is this node's listener.
    deadline = time.monotonic() + TLS_READY_TIMEOUT
    while (error := _tls_handshake_error(tls_port, ca_file)) is not None:
        node.check_booting(f"a TLS handshake on port {tls_port} (last attempt: {error})", deadline)
        time.sleep(0.2)


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
    if missing := missing_tools():
        raise TlsBrokerStartError(f"{', '.join(missing)} not found (set AMQPD_RABBITMQ_BIN)")
    if shutil.which("openssl") is None:
        raise TlsBrokerStartError("openssl not found on PATH")
    workdir = Path(workdir).resolve()
    plain_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    with system_broker_kept("the private TLS node"):
        ca_file, other_ca_file, server_cert, server_key = _make_certificates(workdir / "certs")
        plain_port, tls_port, dist_port = free_ports(3)
        node = PrivateNode(
            workdir,
            name=node_name("tls"),
            port=plain_port,
            dist_port=dist_port,
            cookie=new_cookie(),
            config=_tls_config(tls_port, ca_file, server_cert, server_key),
        )
        try:
            node.start()
            _wait_for_tls(node, tls_port, ca_file)
            yield TlsBroker(
                host=HOST,
                tls_port=tls_port,
                plain_port=plain_port,
                ca_file=ca_file,
                other_ca_file=other_ca_file,
                node_name=node.name,
            )
        finally:
            node.stop()
