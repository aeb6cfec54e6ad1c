"""The dispatcher side's benchmark consumers (copied into each benchmark project).

Each does the scenario's work and nothing else; the shared Probe counts and measures.
"""

import gevent
from probes import Probe

PROBE = Probe.from_environment()


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
