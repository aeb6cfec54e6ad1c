"""The test kit against RabbitMQ: the same scenarios on both, and the outcomes must be equal.

The scenarios are the runtime's end-to-end contract (every answer a consumer can give, a failure
then a redelivery, publishing from a handler, a second answer), the poison messages of the fault
suite under each error policy, routing through every exchange type, TTL expiry, and a quorum
queue's delivery limit. Routing keys are generated from a seed, so the routing scenario covers
more than the keys one would think of.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from .differential import Publication, Scenario, run_in_memory, run_on_rabbitmq
from .harness import Project

TOPOLOGY = """
exchanges:
  - exchange: dead
    type: fanout
  - exchange: events
    type: topic
queues:
  - queue: work
    x_dead_letter_exchange: dead
  - queue: dead-letters
    bindings:
      - exchange: dead
  - queue: audit
    bindings:
      - exchange: events
        routing_key: "audit.#"
"""


def consumers(policy: str = "", count: int = 3, prefetch: int = 5, queue: str = "work") -> str:
    return f"""
shutdown_timeout: 10
consumers:
  - consumer: workers:Recorder
    queue: {queue}
    consumer_count: {count}
    prefetch_count: {prefetch}
{policy}"""


def to_work(body: str, **headers: Any) -> Publication:
    return Publication(body=body, routing_key="work", headers=headers)


CONTRACT = Scenario(
    "the consumer contract",
    consumers() + TOPOLOGY,
    (
        to_work("returns without answering"),
        to_work("acks", answer="ack"),
        to_work("nacks without requeue", answer="nack-no-requeue"),
        to_work("rejects", answer="reject"),
        to_work("fails once, then acks", fail_once=True, answer="ack"),
        to_work("answers twice", answer="double-ack"),
        to_work(
            "publishes",
            publish={"exchange": "events", "routing_key": "audit.order.1", "body": "audited", "headers": {"n": 1}},
        ),
        *(to_work(f"plain {n}") for n in range(20)),
    ),
)

POISON = tuple(to_work(f"poison {n}", fail=True) for n in range(3)) + tuple(to_work(f"good {n}") for n in range(30))

POLICIES = {
    "requeue": Scenario(
        "failing once under on_error: requeue",
        consumers(count=2, prefetch=10) + TOPOLOGY,
        tuple(to_work(f"poison {n}", fail_once=True) for n in range(3)) + POISON[3:],
    ),
    "reject": Scenario("poison under on_error: reject", consumers("    on_error: reject", 2, 10) + TOPOLOGY, POISON),
    "retry": Scenario(
        "poison under on_error: retry",
        consumers("    on_error: retry\n    retry:\n      max_attempts: 3\n      delays: [0.2, 0.3]", 2, 10) + TOPOLOGY,
        POISON,
    ),
}

ROUTING_TOPOLOGY = """
exchanges:
  - exchange: topics
    type: topic
  - exchange: everyone
    type: fanout
  - exchange: matching
    type: headers
  - exchange: direct
    type: direct
queues:
  - queue: work
    bindings:
      - exchange: topics
        routing_key: "order.*"
      - exchange: direct
        routing_key: "order"
  - queue: all-orders
    bindings:
      - exchange: topics
        routing_key: "order.#"
      - exchange: everyone
  - queue: eu
    bindings:
      - exchange: topics
        routing_key: "*.eu.#"
      - exchange: matching
        arguments: {x-match: any, region: eu, priority: high}
  - queue: both
    bindings:
      - exchange: matching
        arguments: {x-match: all, region: eu, priority: high}
"""


def routing_publications(seed: int, count: int = 60) -> tuple[Publication, ...]:
    """Messages with generated routing keys and headers to every exchange of ROUTING_TOPOLOGY."""
    rng = random.Random(seed)
    words = ["order", "order", "eu", "us", "refund", "created", "#", "*", ""]
    publications = []
    for n in range(count):
        key = ".".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
        exchange = rng.choice(["topics", "everyone", "matching", "direct"])
        headers = {
            name: rng.choice(["eu", "us", "high", "low"])
            for name in rng.sample(["region", "priority"], rng.randint(0, 2))
        }
        publications.append(Publication(f"{n} {exchange} {key!r}", key, exchange, headers))
    return tuple(publications)


TTL = Scenario(
    "expired messages, dead-lettered to a consumer",
    consumers()
    + """
queues:
  - queue: work
  - queue: hold
    x_message_ttl: 100
    arguments: {x-dead-letter-exchange: "", x-dead-letter-routing-key: work}
  - queue: short-hold
    arguments: {x-dead-letter-exchange: "", x-dead-letter-routing-key: work}
""",
    tuple(Publication(f"held {n}", "hold") for n in range(5))
    + tuple(Publication(f"expires {n}", "short-hold", properties={"expiration": str(50 * (n + 1))}) for n in range(5)),
)

DELIVERY_LIMIT = Scenario(
    "a quorum queue's delivery limit",
    consumers(count=1, prefetch=1)
    + """
exchanges:
  - exchange: dead
    type: fanout
queues:
  - queue: work
    x_queue_type: quorum
    x_dead_letter_exchange: dead
    arguments: {x-delivery-limit: 2}
  - queue: dead-letters
    bindings:
      - exchange: dead
""",
    (to_work("poison", fail=True), to_work("good")),
)

SCENARIOS = {
    "contract": CONTRACT,
    **{f"poison-{name}": scenario for name, scenario in POLICIES.items()},
    "routing": Scenario(
        "routing through every exchange type",
        consumers(queue="all-orders") + ROUTING_TOPOLOGY,
        routing_publications(12),
    ),
    "ttl": TTL,
    "delivery-limit": DELIVERY_LIMIT,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_kit_and_rabbitmq_agree(name: str, tmp_path: Path, vhost: str, services: list[Any]) -> None:
    scenario = SCENARIOS[name]
    memory = run_in_memory(scenario, Project(tmp_path / "memory", scenario.config).build())
    real = run_on_rabbitmq(scenario, Project(tmp_path / "rabbitmq", scenario.config).build(), vhost, services, memory)
    assert real.attempts, "the scenario consumed something"
    assert not real.differences(memory), "\n".join(real.differences(memory))
