"""The README's second consumer, `workers.module_2:Consumer`, as the 0.x test consumers wrote theirs.

It returns without answering (acked for it, as the original did from 0.1.0), and its shutdown
takes the exception without a default, so it must always be passed.
"""

import gevent


class Consumer:
    def consume(self, amqp, msg):
        print("Consuming message", msg.body)
        gevent.sleep(0.1)
        amqp.publish("test_exchange", "test_routing_key", {}, "New body!")

    def shutdown(self, exception):
        print("Shut down", repr(exception))
