"""The benchmark suite: `python -m bench` (or scripts/bench). See bench/README.md."""
