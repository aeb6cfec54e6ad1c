import abc


def make_consumer():
    return None


class NeedsArguments:
    def __init__(self, database_url, pool_size=4):
        self.database_url = database_url

    def consume(self, amqp, msg):
        pass

    def shutdown(self, exception=None):
        pass


class Abstract(abc.ABC):
    @abc.abstractmethod
    def consume(self, amqp, msg): ...

    def shutdown(self, exception=None):
        pass


class NoShutdown:
    def consume(self, amqp, msg):
        pass


class NoConsume:
    def shutdown(self, exception=None):
        pass


class WrongConsume:
    def consume(self, msg):
        pass

    def shutdown(self, exception=None):
        pass


class AsyncConsume:
    async def consume(self, amqp, msg):
        pass

    async def shutdown(self, exception=None):
        pass


class WrongShutdown:
    def consume(self, amqp, msg):
        pass

    def shutdown(self):
        pass


def startup_with_argument(settings):
    pass


async def async_startup():
    pass


NOT_CALLABLE = 42
