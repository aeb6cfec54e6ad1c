"""The README's first command: build the example shop, run it, publish a few messages, stop it.

Run by scripts/demo from the examples/ directory, against the broker on localhost (or
RABBITMQ_URL). The service's own log lines are shown as they come.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pika

ORDERS = [{"id": n, "quantity": n + 1, "item": item} for n, item in enumerate(["book", "lamp", "mug", "pen", "tea"])]
REFUNDS = [{"id": 100, "amount": 12.5}, {"id": 101, "amount": 0}]


def main() -> int:
    subprocess.run([sys.executable, "-m", "amqp_dispatcher.compiler.cli", "config.yml", "-o", "service"], check=True)
    service = subprocess.Popen(
        [sys.executable, "-m", "service"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    threading.Thread(target=_echo, args=(service, lines), daemon=True).start()
    try:
        _wait(lambda: any("ready:" in line for line in lines) or service.poll() is not None, 60)
        if service.poll() is not None:
            print(f"demo: the service exited with status {service.returncode}", file=sys.stderr)
            return 1
        _publish()
        expected = len(ORDERS) + 1  # the refund of 0 is rejected to the dead-letter queue, not logged
        _wait(lambda: sum(" shop: " in line for line in lines) >= expected, 30)
        _show_metrics()
        print("demo: every message was consumed; stopping the service with SIGTERM")
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
        status = service.wait(60)
    print(f"demo: the service stopped with exit status {status}")
    return status


def _publish() -> None:
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/%2F")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    for order in ORDERS:
        channel.basic_publish("shop", "order.created", json.dumps(order), properties)
    for refund in REFUNDS:
        channel.basic_publish("shop", "refund.requested", json.dumps(refund), properties)
    connection.close()
    print(f"demo: published {len(ORDERS)} orders and {len(REFUNDS)} refunds to the shop exchange")


def _show_metrics() -> None:
    """A few lines of what the service's HTTP endpoint (http: port in config.yml) reports."""
    port = os.environ.get("DISPATCHER_HTTP_PORT", "9108")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
        print(f"demo: GET /readyz -> {answer.status} {answer.read().decode().strip()}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    wanted = ("amqp_dispatcher_messages_received_total", "amqp_dispatcher_messages_settled_total")
    shown = [line for line in text.splitlines() if line.startswith(wanted) and not line.endswith(" 0.0")]
    print("demo: GET /metrics (the counts that are not zero):")
    for line in shown:
        print(f"  {line}")


def _echo(service: subprocess.Popen[str], lines: list[str]) -> None:
    assert service.stdout is not None
    for line in service.stdout:
        lines.append(line)
        print(f"  service | {line}", end="")


def _wait(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: nothing happened within {timeout} s")
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
