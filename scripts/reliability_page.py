"""Update the results table of docs/reliability.md from the last fault-suite run.

The fault suite (`scripts/test tests/faults`) writes its figures to build/reliability.json;
this copies them into the page, keeping the rows of scenarios that did not run. Run it after a
full run whose figures you mean to publish, and review the diff.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "reliability.json"
PAGE = ROOT / "docs" / "reliability.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
HEADER = (
    "| # | scenario | sent | processed | duplicates | parked | queued | lost | recovery (s) | notes |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


def render(page: str, results: dict[str, object]) -> str:
    start, end = page.index(START), page.index(END)
    rows = {
        match.group(1): line for line in page[start:end].splitlines() if (match := re.match(r"\| (\d+[a-z]?) \|", line))
    }
    rows.update(results["rows"])  # type: ignore[arg-type]
    ordered = sorted(rows, key=lambda key: (int(re.sub(r"\D", "", key)), key))
    intro = f"Last run: {results['date']}, Python {results['python']}, RabbitMQ {results['rabbitmq']}.\n\n"
    table = intro + HEADER + "\n".join(rows[key] for key in ordered)
    return page[: start + len(START)] + "\n" + table + "\n" + page[end:]


def main() -> int:
    if not RESULTS.exists():
        sys.stderr.write(f"no {RESULTS.relative_to(ROOT)}: run the fault suite first (scripts/test tests/faults)\n")
        return 1
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8"), results), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
