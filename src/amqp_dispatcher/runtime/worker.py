"""A worker process's link to its parent, when the service runs as several processes.

Owns the worker's side of the channel the parent opens for it (a Unix socket, its descriptor
named in DISPATCHER_WORKER): every REPORT_INTERVAL seconds, and once more at the end, one JSON
line with the process's counts and what keeps it from being ready; and, the other way, the
parent's requests, `stop` (drain, as on SIGTERM) and `now` (stop at once, as on a second
signal). A request is idempotent with a signal the worker got itself (from a terminal's
Ctrl-C, or a supervisor that signals every process), so one stop never counts as two. When
the channel closes without a request, the parent is gone, and the worker drains and exits
rather than consume without one.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import gevent
import gevent.event
import gevent.socket

from .errors import ConfigurationError
from .logs import ROOT, get_logger, safe
from .monitoring import Monitoring

log = get_logger(ROOT)

VARIABLE = "DISPATCHER_WORKER"
REPORT_INTERVAL = 1.0
_FORMAT = re.compile(r"([0-9]+)/([0-9]+):([0-9]+)")


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """Worker `index` of `count`, and the descriptor of its channel to the parent."""

    index: int
    count: int
    channel: int

    def __str__(self) -> str:
        return f"worker {self.index}/{self.count}"

    def environment(self) -> str:
        return f"{self.index}/{self.count}:{self.channel}"


def from_environment(environ: Mapping[str, str]) -> WorkerIdentity | None:
    """Who this process is, if its parent started it as a worker; None when it runs alone."""
    text = environ.get(VARIABLE, "").strip()
    if not text:
        return None
    match = _FORMAT.fullmatch(text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigurationError(
            f"{VARIABLE}={safe(text)!r} is not what a parent process sets; it is set by the service itself "
            f"when it runs several processes: unset it"
        )
    return WorkerIdentity(int(match[1]), int(match[2]), int(match[3]))


class ParentLink:
    """The reports to the parent, and its requests. Lifecycle: start, finish (one final report)."""

    def __init__(self, identity: WorkerIdentity, monitoring: Monitoring, stop: Callable[[bool], None]) -> None:
        self.identity = identity
        self._monitoring = monitoring
        self._stop = stop
        self._socket: socket.socket | None = None
        self._finishing = gevent.event.Event()
        self._reporter: gevent.Greenlet[[], None] | None = None
        self._listener: gevent.Greenlet[[], None] | None = None

    def __repr__(self) -> str:
        return f"<ParentLink {self.identity} {'open' if self._socket else 'closed'}>"

    def start(self) -> None:
        try:
            self._socket = gevent.socket.socket(fileno=self.identity.channel)
            os.set_inheritable(self.identity.channel, False)  # a program the consumer starts must not hold it open
        except OSError as error:
            raise ConfigurationError(
                f"{VARIABLE}: descriptor {self.identity.channel} is not a channel to a parent process ({error}); "
                "it is set by the service itself when it runs several processes: unset it"
            ) from None
        self._reporter = gevent.spawn(self._report_every_interval)
        self._listener = gevent.spawn(self._listen)

    def finish(self) -> None:
        """The last report, after the drain: the counts this worker ends with. A report being
        sent is finished first (a large one takes several writes): a line cut in two would make
        the parent discard both."""
        self._finishing.set()
        if self._reporter is not None:
            self._reporter.join(timeout=5.0)
            self._reporter.kill()
        if self._listener is not None:
            self._listener.kill()
        self._report()
        connection, self._socket = self._socket, None
        if connection is not None:
            connection.close()

    def _report_every_interval(self) -> None:
        while self._report() and not self._finishing.wait(REPORT_INTERVAL):
            pass

    def _report(self) -> bool:
        connection = self._socket
        if connection is None:
            return False
        line = json.dumps({"snapshot": self._monitoring.snapshot(), "not_ready": self._monitoring.not_ready()})
        try:
            connection.sendall(line.encode("utf-8") + b"\n")
        except OSError:  # the parent is gone; _listen sees it too, and stops the worker
            return False
        return True

    def _listen(self) -> None:
        connection = self._socket
        assert connection is not None
        with connection.makefile("rb") as reader:  # closed when finish() kills this, so the socket closes
            while True:
                try:
                    line = reader.readline(64)
                except OSError:
                    line = b""
                request = line.strip()
                if request == b"stop":
                    self._stop(False)
                elif request == b"now":
                    self._stop(True)
                elif not line:
                    log.warning(
                        "%s: the parent process is gone; finishing in-flight messages and stopping", self.identity
                    )
                    self._stop(False)
                    return
