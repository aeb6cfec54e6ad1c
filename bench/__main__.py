"""Run the benchmarks: `python -m bench [--quick]`.

Scenario 6 (build time) is here today; the consumer-throughput scenarios against a bare pika
loop come with the benchmark issue. Figures print as one line each; absolute numbers on a
shared 2-core machine are noisy, so the targets in bench/README.md are generous bounds.
"""

from __future__ import annotations

import argparse

from . import build_time

TARGET_BUILD_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for CI: checks that the suite runs")
    arguments = parser.parse_args()
    rounds = 1 if arguments.quick else 5
    result = build_time.run(rounds)
    status = "ok" if result["build_s"] < TARGET_BUILD_S else "MISSED"
    print(
        f"build 1000 consumers / 200 queues: {result['build_s']:.2f} s (target < {TARGET_BUILD_S:.0f} s: {status}); "
        f"import of the generated package: {result['import_s'] * 1000:.0f} ms "
        f"beyond an interpreter start of {result['interpreter_start_s'] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
