class OrderConsumer:
    def consume(self, amqp, msg):
        amqp.ack()

    def shutdown(self, exception=None):
        pass


class RefundConsumer(OrderConsumer):
    pass


def startup():
    pass


SETTINGS = {"debug": True}
