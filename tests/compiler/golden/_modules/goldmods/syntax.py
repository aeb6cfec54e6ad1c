class Consumer:
    def consume(self, amqp, msg)
        pass
