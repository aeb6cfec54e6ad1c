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
        "2 shared cores. Medians of the rounds; ratio = ours / against, where against is the bare pika loop, "
        "except in scenario 2 (the theoretical figure), 8 and 9 (the same service otherwise configured, as the "
        "row says) and 10 (the framework the row names).",
        "",
        "| # | what | ours | against | ratio | target | met |",
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
    lines += ["", "![Ratios: ours against the bare pika loop, or as each row says](ratios.png)"]
    return "\n".join(lines)


def chart(figures: Sequence[Figure], path: Path) -> None:
    """Horizontal bars of each ratio from the line at 1.0 (as fast, or as costly, as the other
    side), on a logarithmic axis: 2× and 0.5× are as far from it, and scenario 10's ratios of
    several times do not flatten the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    compared = [figure for figure in figures if figure.ratio]
    labels = [f"{f.scenario}. {f.label} ({f.unit})" for f in compared]
    ratios = [f.ratio or 1.0 for f in compared]
    colours = ["#c0392b" if f.met is False else "#2e86c1" for f in compared]
    height = 0.45 * len(compared) + 1.5
    figure, axes = plt.subplots(figsize=(11, height))
    axes.set_xscale("log")
    axes.barh(range(len(compared)), [ratio - 1 for ratio in ratios], left=1.0, color=colours)
    axes.set_yticks(range(len(compared)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(1.0, color="black", linewidth=0.8)
    for index, (ratio, colour) in enumerate(zip(ratios, colours, strict=True)):
        side = "left" if ratio >= 1 else "right"
        axes.text(ratio, index, f" {ratio:.2f} ", va="center", ha=side, fontsize=8, color=colour)
    axes.set_xlabel(
        "ours / against, on a logarithmic scale; against is the bare pika loop,\n"
        "except in 2 (theoretical), 8 and 9 (as labelled) and 10 (the framework named)\n"
        "red: target missed",
        fontsize=9,
    )
    low, high = min([0.7, *ratios]) / 2, max([1.5, *ratios]) * 2  # room for the figures beside the bars
    axes.set_xlim(low, high)
    axes.set_xticks([tick for tick in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100) if low <= tick <= high])
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}×"))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
