"""A private, throw-away RabbitMQ node with the management plugin, for `plan --management-url` tests.

This module owns what makes that node a management node: the plugin enabled in the node's own
enabled-plugins file, its HTTP listener on a port of its own (on loopback), and waiting until
the API answers an authenticated request; and what a test asks of it (rabbitmqctl on the node,
the guest URLs of AMQP and of the API). The node itself (its files, isolation from the system
broker, start-up and shutdown) is a private_node.PrivateNode, under the ``workdir`` given to
:func:`start_management_broker`. The system broker is never touched.

Start-up, measured on a 2-core machine (RabbitMQ 3.10): 5 to 8 s, the plugin's HTTP listener
included; the node is killed at the end rather than stopped, which would take 7 s more.
"""

from __future__ import annotations

import base64
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .private_node import (
    NodeStartError,
    PrivateNode,
    free_ports,
    missing_tools,
    new_cookie,
    node_name,
    plain_path,
    system_broker_kept,
)

__all__ = ["ManagementBroker", "NodeStartError", "start_management_broker"]

LOOPBACK = "127.0.0.1"
# The plugin starts with the node, so once `rabbit` runs its listener is up or about to be.
API_READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class ManagementBroker:
    """Where the private node listens for AMQP and for its management API."""

    node: PrivateNode
    amqp_port: int
    management_port: int

    @property
    def management_url(self) -> str:
        """The API's base URL, without credentials."""
        return f"http://{LOOPBACK}:{self.management_port}"

    def amqp_url(self, vhost: str = "/") -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.amqp_port}/{quote(vhost, safe='')}"

    def ctl(self, *args: str) -> str:
        return self.node.ctl(*args)

    def create_vhost(self, name: str) -> str:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name


def _api_error(port: int) -> str | None:
    """None if the API on 127.0.0.1:``port`` answers guest's GET /api/overview with 200."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/api/overview",
        headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()},
    )
    try:
        with urllib.request.urlopen(request, timeout=2.0) as answer:
            return None if answer.status == 200 else f"HTTP {answer.status}"
    except (OSError, urllib.error.URLError) as exc:
        return repr(exc)


def _wait_for_api(node: PrivateNode, port: int) -> None:
    deadline = time.monotonic() + API_READY_TIMEOUT
    while (error := _api_error(port)) is not None:
        node.check_booting(f"the management API on port {port} (last attempt: {error})", deadline)
        time.sleep(0.2)


@contextlib.contextmanager
def start_management_broker(workdir: Path) -> Iterator[ManagementBroker]:
    """Run a private RabbitMQ node with the management plugin for the duration of the ``with`` block.

    ``workdir`` (created if missing; no spaces or quotes in its path) receives the node's
    configuration, data and logs, and is left in place afterwards. The node accepts guest/guest
    from localhost over AMQP on ``amqp_port`` and over HTTP on ``management_port``. Raises
    NodeStartError, quoting the node's log, if it does not come up. On exit the node's VM is
    killed; SystemBrokerDisturbedError if the system broker stopped answering meanwhile.
    """
    if missing := missing_tools():
        raise NodeStartError(f"{', '.join(missing)} not found (set AMQPD_RABBITMQ_BIN)")
    workdir = Path(workdir).resolve()
    plain_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with system_broker_kept("the private management node"):
        amqp_port, management_port, dist_port = free_ports(3)
        node = PrivateNode(
            workdir,
            name=node_name("mgmt"),
            port=amqp_port,
            dist_port=dist_port,
            cookie=new_cookie(),
            config=[f"management.tcp.port = {management_port}", f"management.tcp.ip = {LOOPBACK}"],
            plugins=["rabbitmq_management"],
        )
        try:
            node.start()
            _wait_for_api(node, management_port)
            yield ManagementBroker(node=node, amqp_port=amqp_port, management_port=management_port)
        finally:
            node.kill()  # its data is thrown away, and a polite stop takes 7 s more
