class Consumer:
    def consume(self, amqp, msg):
        pass

    def shutdown(self, exception=None):
        pass
