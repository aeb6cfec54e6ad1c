"""A private RabbitMQ cluster on loopback, for fault tests that stop, kill and restart its nodes.

This module owns the cluster: starting N private nodes (private_node.PrivateNode: own names,
ports, data directories and one private Erlang cookie; the system broker is never touched) and
joining them, and what a test does to it: stop a node, SIGKILL its VM, start it again and wait
until it has rejoined, find the node a client's connection is on, wait for a quorum queue's
members, and publish with confirms to a node. It knows nothing of the service under test.

Start-up, measured on a 2-core machine (RabbitMQ 3.10): the nodes boot in parallel as
standalone nodes (about 8 s for three), then every node but the first joins the first
(`stop_app`, `join_cluster`, `start_app`: about 3 s each); about 14 s in all. The joins go one
at a time: two at once sometimes fail ("Failed to merge schema"). Booting the nodes straight
into a cluster through classic peer discovery took as long, and booting them one after another
20 s.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pika
import pika.spec

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

__all__ = ["Cluster", "NodeStartError", "publish_confirmed", "start_cluster"]

LOOPBACK = "127.0.0.1"
REJOIN_TIMEOUT = 60.0
_T = TypeVar("_T")


def _each(function: Callable[[PrivateNode], _T], nodes: Sequence[PrivateNode]) -> list[_T]:
    """``function`` on every node at once (threads: each call mostly waits on a subprocess)."""
    if len(nodes) <= 1:
        return [function(node) for node in nodes]
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(function, nodes))


@dataclass(frozen=True)
class Cluster:
    """The nodes of a running private cluster; the first is the one the others joined."""

    nodes: tuple[PrivateNode, ...]

    def __repr__(self) -> str:
        return f"<Cluster {', '.join(f'{node.short_name}:{node.port}' for node in self.nodes)}>"

    def url(self, vhost: str = "/", nodes: Sequence[PrivateNode] | None = None) -> str:
        """The guest URL listing every node (or these), as RABBITMQ_URL takes several hosts."""
        hosts = ",".join(f"{LOOPBACK}:{node.port}" for node in (nodes or self.nodes))
        return f"amqp://guest:guest@{hosts}/{quote(vhost, safe='')}"

    def running(self) -> list[PrivateNode]:
        return [node for node in self.nodes if node.pids()]

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl`` on a node whose VM runs (the first that answers)."""
        errors = []
        for node in self.running():
            try:
                return node.ctl(*args, timeout=timeout)
            except RuntimeError as error:
                errors.append(str(error))
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed on every running node: {errors}")

    # What a test does to the nodes

    def stop_node(self, node: PrivateNode) -> None:
        """A clean stop of the whole node (``rabbitmqctl stop``): connections closed, VM halted."""
        node.stop()

    def stop_app(self, node: PrivateNode) -> None:
        """``rabbitmqctl stop_app``: RabbitMQ stops, the VM stays (``start_node`` starts it again)."""
        node.ctl("stop_app")

    def kill_node(self, node: PrivateNode) -> None:
        """SIGKILL the node's VM: a crash, nothing closed politely."""
        node.kill()

    def start_node(self, node: PrivateNode) -> None:
        """Start a stopped or killed node (or a stopped app) on its data, and wait until it has rejoined."""
        if node.pids():
            node.ctl("start_app")
        else:
            node.start()
        self.wait_rejoined(node)

    def restore(self) -> None:
        """Every node running and clustered again, whatever a test did to them."""
        running = self.running_nodes()
        _each(self.start_node, [node for node in self.nodes if node.name not in running or not node.pids()])

    def running_nodes(self, node: PrivateNode | None = None) -> set[str]:
        """The cluster's running nodes, as ``node`` (or any running node) sees them."""
        try:
            output = (node.ctl if node else self.ctl)("cluster_status", "--formatter", "json", timeout=30)
        except RuntimeError:
            return set()
        return set(json.loads(output).get("running_nodes", []))

    def wait_rejoined(self, node: PrivateNode, timeout: float = REJOIN_TIMEOUT) -> None:
        """Until every other running node counts ``node`` among the cluster's running nodes."""
        deadline = time.monotonic() + timeout
        node.ctl("await_startup", "--timeout", str(int(timeout)))
        while True:
            others = [other for other in self.running() if other is not node]
            if all(node.name in self.running_nodes(other) for other in others):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} did not rejoin within {timeout} s")
            time.sleep(0.2)

    # What a test asks of the cluster

    def connections(self, *fields: str) -> list[dict[str, Any]]:
        """Every client connection on the cluster, with these fields (list_connections's names)."""
        listing = self.ctl("list_connections", *fields, "--formatter", "json", "--quiet")
        return list(json.loads(listing or "[]"))

    def node_of(
        self, *, vhost: str | None = None, name_part: str | None = None, client_port: int | None = None
    ) -> PrivateNode | None:
        """The node holding a client connection: the first in ``vhost`` (if given) whose name (the
        client's connection_name) contains ``name_part`` (if given) and that comes from
        ``client_port`` (if given); None if there is none. (3.10 lists no node per connection:
        the port of its listener tells.)"""
        for row in self.connections("vhost", "port", "peer_port", "client_properties"):
            name = next((value for key, _, value in row["client_properties"] if key == "connection_name"), "")
            if (
                (vhost is None or row["vhost"] == vhost)
                and (name_part is None or name_part in name)
                and (client_port is None or row["peer_port"] == client_port)
            ):
                return next(node for node in self.nodes if node.port == row["port"])
        return None

    def quorum_members_online(self, vhost: str, queue: str) -> int:
        """How many of the quorum queue's members run (0 while the queue cannot be listed)."""
        online = self._queue_info(vhost, queue, "online")
        return len(online) if isinstance(online, list) else 0

    def quorum_leader(self, vhost: str, queue: str) -> PrivateNode | None:
        """The node of the quorum queue's leader (None while it has none, or cannot be listed)."""
        leader = self._queue_info(vhost, queue, "leader")
        return next((node for node in self.nodes if node.name == leader), None)

    def _queue_info(self, vhost: str, queue: str, item: str) -> Any:
        try:
            listing = self.ctl("list_queues", "-p", vhost, "name", item, "--formatter", "json", "--quiet")
        except RuntimeError:
            return None
        return next((row[item] for row in json.loads(listing or "[]") if row["name"] == queue), None)

    def add_vhost(self, vhost: str) -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        self.ctl("delete_vhost", vhost)


# ---------------------------------------------------------------------------------------------
# Start-up and teardown


def _join(node: PrivateNode, first: PrivateNode) -> None:
    node.ctl("stop_app")
    node.ctl("join_cluster", first.name)
    node.ctl("start_app")


@contextlib.contextmanager
def start_cluster(workdir: Path, size: int = 3) -> Iterator[Cluster]:
    """Run a private cluster of ``size`` nodes on loopback for the duration of the ``with`` block.

    Each node gets ``workdir/node<i>`` (its data, configuration and logs, left in place) and a
    plain AMQP listener on 127.0.0.1 taking guest/guest. Raises NodeStartError, quoting the
    node's log, if a node does not come up. On exit every VM the cluster started is stopped
    (killed if need be); then SystemBrokerDisturbedError if the system broker stopped answering.
    """
    if missing := missing_tools():
        raise NodeStartError(f"{', '.join(missing)} not found (set AMQPD_RABBITMQ_BIN)")
    workdir = Path(workdir).resolve()
    plain_path(workdir)
    cookie = new_cookie()
    ports = free_ports(2 * size)
    nodes = tuple(
        PrivateNode(
            workdir / f"node{index}",
            name=node_name(f"cluster{index}"),
            port=ports[index],
            dist_port=ports[size + index],
            cookie=cookie,
        )
        for index in range(size)
    )
    with system_broker_kept("the private cluster"):
        try:
            _each(lambda node: node.launch(), nodes)
            _each(lambda node: node.wait_started(), nodes)
            for node in nodes[1:]:  # one at a time: Mnesia fails to merge two joins at once
                _join(node, nodes[0])
            cluster = Cluster(nodes)
            if (running := cluster.running_nodes(nodes[0])) != {node.name for node in nodes}:
                raise NodeStartError(f"the private cluster did not form: {nodes[0].name} sees {sorted(running)}")
            yield cluster
        finally:
            _each(lambda node: node.stop(), nodes)


# ---------------------------------------------------------------------------------------------
# Publishing


def publish_confirmed(
    port: int,
    vhost: str,
    routing_key: str,
    bodies: Iterable[str],
    *,
    headers: dict[str, Any] | None = None,
    window: int = 1000,
    timeout: float = 120.0,
) -> None:
    """Persistent messages (body and message_id each string) to the default exchange through the
    node on ``port``, up to ``window`` unconfirmed at a time; returns once the broker confirmed
    every one. A nack or a return sends the message again; a lost connection raises."""
    publisher = _ConfirmingPublisher(port, vhost, routing_key, bodies, headers, window)
    publisher.run(timeout)


class _ConfirmingPublisher:
    """pika's BlockingChannel waits for each confirm in turn; this keeps a window of them in flight."""

    def __init__(
        self,
        port: int,
        vhost: str,
        routing_key: str,
        bodies: Iterable[str],
        headers: dict[str, Any] | None,
        window: int,
    ) -> None:
        self.routing_key, self.headers, self.window = routing_key, headers, window
        self.waiting: deque[str] = deque(bodies)
        self.unconfirmed: dict[int, str] = {}
        self.returned: set[str] = set()
        self.next_tag = 1
        self.error: BaseException | None = None
        parameters = pika.ConnectionParameters(
            LOOPBACK, port, virtual_host=vhost, credentials=pika.PlainCredentials("guest", "guest")
        )
        self.connection = pika.SelectConnection(
            parameters,
            on_open_callback=lambda connection: connection.channel(on_open_callback=self._opened),
            on_open_error_callback=lambda _connection, error: self._fail(error),
            on_close_callback=lambda _connection, error: self._closed(error),
        )
        self.channel: Any = None

    def run(self, timeout: float) -> None:
        self.connection.ioloop.call_later(timeout, lambda: self._fail(TimeoutError(f"not confirmed in {timeout} s")))
        self.connection.ioloop.start()
        if self.error is not None:
            raise RuntimeError(f"publishing failed with {len(self.waiting) + len(self.unconfirmed)} unconfirmed") from (
                self.error
            )

    def _opened(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_return_callback(lambda _ch, _method, properties, _body: self.returned.add(properties.message_id))
        channel.confirm_delivery(self._confirmed, callback=lambda _frame: self._send())

    def _send(self) -> None:
        while self.waiting and len(self.unconfirmed) < self.window:
            body = self.waiting.popleft()
            properties = pika.BasicProperties(delivery_mode=2, message_id=body, headers=self.headers)
            self.channel.basic_publish("", self.routing_key, body.encode(), properties, mandatory=True)
            self.unconfirmed[self.next_tag] = body
            self.next_tag += 1
        if not self.waiting and not self.unconfirmed:
            self.connection.close()

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [tag for tag in self.unconfirmed if tag <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            body = self.unconfirmed.pop(tag)
            if isinstance(method, pika.spec.Basic.Nack) or body in self.returned:
                self.returned.discard(body)
                self.waiting.append(body)
        self._send()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if self.connection.is_open:
            self.connection.close()
        else:
            self.connection.ioloop.stop()

    def _closed(self, error: BaseException) -> None:
        if (self.waiting or self.unconfirmed) and self.error is None:
            self.error = error
        self.connection.ioloop.stop()
