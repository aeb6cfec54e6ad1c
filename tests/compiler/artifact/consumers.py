"""Consumer modules for the artifact tests, including two classes with the same name."""


class Consumer:
    def consume(self, amqp, msg):
        amqp.ack()

    def shutdown(self, exception=None):
        pass


class Service(Consumer):
    """Named like a runtime class, to prove the generator aliases it."""


def startup():
    pass
