"""Run the benchmarks: `python -m bench [--quick] [--only 1,3]`.

Each scenario runs the service built by dispatcher-build and, in the same run, a bare pika
GeventConnection loop doing the same work (scenario 10: FastStream, dramatiq and Celery),
alternating them over the rounds; see bench/README.md for the scenarios and targets. A full run
rewrites the results table in bench/README.md, bench/results.json and the chart
bench/ratios.png (a run of some scenarios, with --only, updates their rows and keeps the
others). --quick runs every scenario small and once, in about a minute and a half, and writes
nothing: CI runs it so that the suite never rots.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import report
from .harness import Broker
from .scenarios import FULL, QUICK, SCENARIOS


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small and once, for CI (about 90 s); writes nothing")
    parser.add_argument("--only", default="", metavar="N,N", help="run only these scenarios, e.g. 1,3")
    arguments = parser.parse_args()
    size = QUICK if arguments.quick else FULL
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}; they are {', '.join(SCENARIOS)}")
    broker = Broker()
    figures = []
    try:
        for name in chosen:
            for figure in SCENARIOS[name](broker, size):
                print(figure.line(), flush=True)
                figures.append(figure)
    finally:
        broker.close()
    if arguments.quick:
        with tempfile.TemporaryDirectory() as folder:
            report.chart(figures, Path(folder) / "ratios.png")  # the chart code runs too
        print("quick run: nothing written (the figures of a quick run are not comparable)")
    else:
        # A scenario that produced nothing (scenario 10 without its frameworks) keeps its last rows.
        ran = [name for name in chosen if any(figure.scenario == name for figure in figures)]
        if ran:
            report.write(figures, only=ran if arguments.only or len(ran) < len(chosen) else ())
            print("wrote bench/README.md, bench/results.json and bench/ratios.png")
    missed = [figure for figure in figures if figure.met is False]
    if missed and not arguments.quick:
        print(f"{len(missed)} target(s) missed; see bench/README.md for what the gap is made of", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
