"""The dispatcher side's benchmark consumers (copied into each benchmark project).

Each does the scenario's work and nothing else; the shared Probe counts and measures.
"""

import time

import gevent
from probes import Probe

PROBE = Probe.from_environment()


def _flush_every_tenth_of_a_second():
    while True:
        gevent.sleep(0.1)
        PROBE.flush()


if PROBE.shared:
    gevent.spawn(_flush_every_tenth_of_a_second)


class NoOp:
    def consume(self, amqp, msg):
        PROBE.tick()

    def shutdown(self, exception=None):
        pass


class Sleeper:
    """I/O-bound work: 50 ms of waiting, as a database call would."""

    def consume(self, amqp, msg):
        PROBE.begin()
        gevent.sleep(0.05)
        PROBE.tick()

    def shutdown(self, exception=None):
        pass


class Latency:
    def consume(self, amqp, msg):
        PROBE.tick(float(msg.headers["published_at"]))

    def shutdown(self, exception=None):
        pass


class Republisher:
    """Publishes each message on, with confirms, then (by returning) acks it."""

    def consume(self, amqp, msg):
        amqp.publish("", "bench-out", None, msg.body)
        PROBE.tick()

    def shutdown(self, exception=None):
        pass


class Burner:
    """CPU-bound work: about 1 ms of the process's CPU per message."""

    def consume(self, amqp, msg):
        PROBE.begin()
        until = time.process_time() + 0.001
        while time.process_time() < until:
            pass
        PROBE.tick()

    def shutdown(self, exception=None):
        pass


class Waiter:
    """I/O-bound work: 10 ms of waiting per message."""

    def consume(self, amqp, msg):
        PROBE.begin()
        gevent.sleep(0.01)
        PROBE.tick()

    def shutdown(self, exception=None):
        pass
