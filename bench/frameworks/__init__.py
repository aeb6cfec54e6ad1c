"""Scenario 10's other frameworks as their users write them: one worker module each.

faststream_app, dramatiq_app and celery_app each hold a no-op handler that calls the Probe, as
bench/consumers.py does for the service; bench/comparison.py fills their queues and starts
them. This package itself holds only what both sides agree on, with the standard library
alone: the worker processes import it as `frameworks` (their PYTHONPATH is bench/), the
harness as `bench.frameworks`.
"""

CONCURRENCY = 10  # handlers at once, on every side
PREFETCH = 100  # unacknowledged messages per consumer, on every side that lets one set it
PAYLOAD = "x" * 200  # the message's content: the whole body, or the task's one argument
TASK = "bench_noop"  # the dramatiq actor's and the Celery task's name

FASTSTREAM_QUEUE = "bench-faststream"
DRAMATIQ_QUEUE = "bench-dramatiq"
CELERY_QUEUE = "bench-celery"
