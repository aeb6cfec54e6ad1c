"""The benchmark's results page: the table in bench/README.md, results.json, and a chart of ratios."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path

from .scenarios import Figure

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def write(figures: Sequence[Figure], directory: Path = HERE, *, only: Sequence[str] = ()) -> None:
    """Write the results. With `only` (a run of some scenarios), their rows replace the same
    scenarios' rows of the last results, and every other row stays as it was."""
    today = date.today().isoformat()
    rows = [asdict(f) | {"ratio": f.ratio, "date": today} for f in figures]
    results = directory / "results.json"
    if only and results.exists():
        kept = [row for row in json.loads(results.read_text()) if row["scenario"] not in only]
        rows = sorted([*kept, *rows], key=lambda row: int(row["scenario"]))  # stable: each scenario's order kept
    results.write_text(json.dumps(rows, indent=2) + "\n")
    shown = [Figure(**{key: row[key] for key in Figure.__dataclass_fields__}) for row in rows]
    chart(shown, directory / "ratios.png")
    readme = directory / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    dates = {row["scenario"]: row.get("date", "an earlier run") for row in rows}
    readme.write_text(f"{head}{START}\n{table(shown, dates)}\n{END}{tail}", encoding="utf-8")


def table(figures: Sequence[Figure], dates: dict[str, str]) -> str:
    version = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True, check=False).stdout.strip()
    runs: dict[str, list[str]] = {}
    for scenario, day in dates.items():
        runs.setdefault(day, []).append(scenario)
    when = "; ".join(
        f"scenario{'s' * (len(scenarios) > 1)} {', '.join(scenarios)}: {day}" for day, scenarios in sorted(runs.items())
    )
    lines = [
        f"Latest runs ({when}), Python {platform.python_version()}, RabbitMQ {version or '?'}, "
        "2 shared cores. Medians of the rounds; ratio = ours / bare.",
        "",
        "| # | what | ours | bare pika (or theoretical) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        bare = f"{_num(figure.bare)} {figure.unit}" if figure.bare else "-"
        ratio = f"{figure.ratio:.2f}" if figure.ratio is not None else "-"
        met = "-" if figure.met is None else ("yes" if figure.met else "**no**")
        lines.append(
            f"| {figure.scenario} | {figure.label} | {_num(figure.ours)} {figure.unit} | {bare} | {ratio} | "
            f"{figure.target} | {met} |"
        )
    lines += ["", "![Ratios against the bare pika loop](ratios.png)"]
    return "\n".join(lines)


def chart(figures: Sequence[Figure], path: Path) -> None:
    """Horizontal bars of each ratio, with the line at 1.0 (as fast, or as costly, as bare pika)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [figure for figure in figures if figure.ratio is not None]
    labels = [f"{f.scenario}. {f.label} ({f.unit})" for f in compared]
    ratios = [f.ratio or 0.0 for f in compared]
    colours = ["#c0392b" if f.met is False else "#2e86c1" for f in compared]
    height = 0.45 * len(compared) + 1.5
    figure, axes = plt.subplots(figsize=(10, height))
    axes.barh(range(len(compared)), ratios, color=colours)
    axes.set_yticks(range(len(compared)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(1.0, color="black", linewidth=0.8)
    for index, ratio in enumerate(ratios):
        axes.text(ratio, index, f" {ratio:.2f}", va="center", fontsize=8)
    axes.set_xlabel("ours / bare pika loop (scenario 2: / theoretical)\nred: target missed", fontsize=9)
    axes.set_xlim(0, max(1.3, max(ratios, default=1.0) * 1.15))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
