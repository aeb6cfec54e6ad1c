"""The original README's example consumer, ported to Python 3 (print statements as calls).

Deterministic where the README's was random: it publishes for bodies that start with
"publish", and raises ValueError on the first delivery of each body that starts with "fail".
"""

import gevent

# Bodies that have failed once: their redelivery succeeds.
failed = set()


class Consumer:
    def __init__(self):
        self.init_msg = "I've been initiliazed"

    def consume(self, amqp, msg):
        print("Consuming message", msg.body)
        gevent.sleep(0.1)
        if msg.body.startswith(b"publish"):
            print("publishing")
            # Positional, empty headers, a str body, to a routing key nothing is bound to.
            amqp.publish("test_exchange", "test_routing_key", {}, "New body!")
        if msg.body.startswith(b"fail") and msg.body not in failed:
            failed.add(msg.body)
            raise ValueError()
        print("Done sleeping")
        amqp.ack()

    def shutdown(self, exception=None):
        print("Shut down")
