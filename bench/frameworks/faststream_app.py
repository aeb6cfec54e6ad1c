"""FastStream's side of scenario 10: `python -m frameworks.faststream_app`, from bench/.

One subscriber with a no-op handler. FastStream 0.7 has no worker count for RabbitMQ: aiormq
starts a task per delivery, so the handlers at once are bounded by the prefetch alone. The
handler acks after it returns (AckPolicy.ACK, not ACK_FIRST). The per-message access log is off
(logger=None): by default FastStream writes two INFO lines per message, and no other side of
the comparison logs per message.
"""

from __future__ import annotations

import asyncio
import os

from faststream import AckPolicy, FastStream
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from frameworks import FASTSTREAM_QUEUE, PREFETCH
from probes import Probe

PROBE = Probe.from_environment()
broker = RabbitBroker(os.environ["RABBITMQ_URL"], logger=None)
app = FastStream(broker, logger=None)


@broker.subscriber(
    RabbitQueue(FASTSTREAM_QUEUE, durable=False),
    channel=Channel(prefetch_count=PREFETCH),
    ack_policy=AckPolicy.ACK,
)
async def noop(body: bytes) -> None:
    PROBE.tick()


if __name__ == "__main__":
    asyncio.run(app.run())  # SIGTERM and SIGINT stop it
