"""A TCP proxy on loopback that can cut a connection without closing it: a silent network.

Connections through the proxy are forwarded to the broker until `cut()`; after that, what
either side sends to an existing connection is read and thrown away, and nothing is closed, as
a dead route or a stateful firewall dropping packets would do. Connections made after the cut
are forwarded normally, so a client that notices (by its heartbeats) can reconnect.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class BlackholeProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut_before = 0  # connections numbered below this are cut
        self._count = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """From now on, every connection already open carries nothing, in either direction."""
        with self._lock:
            self._cut_before = self._count

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._close(*self._sockets)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                number = self._count
                self._count += 1
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(number, client, upstream), daemon=True).start()

    def _is_cut(self, number: int) -> bool:
        with self._lock:
            return number < self._cut_before

    def _pump(self, number: int, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while not self._stopped.is_set():
            try:
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        self._close(client, upstream)
                        return
                    if not self._is_cut(number):
                        peers[sock].sendall(data)
            except OSError:
                self._close(client, upstream)
                return

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
