"""The small framework every benchmark shares: result rows, statistics, the runner, the table.

A benchmark is a function `(ctx: Context) -> Iterable[Row]` registered in `bench.registry`.
Each row is one figure: a median and p95 with the baseline measured in the same run and their
ratio, or a count compared with the same count at another scale. The runner collects the rows
of every selected benchmark, prints them as one aligned table and writes them as JSON and
Markdown. A missed goal is a measurement, not an error: only a benchmark that could not measure
(an exception) makes the command fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# A row's result.
PASS = "pass"  # noqa: S105 - a result, not a password
MISSED = "MISSED"
NOT_BUILT = "not built"
INFO = "info"  # a figure with no goal: the baseline, the size of the seeded fleet
ERROR = "ERROR"  # the benchmark failed before it could measure
STATUSES = (PASS, MISSED, NOT_BUILT, INFO, ERROR)

MODES = ("quick", "full")


class BenchError(Exception):
    """A benchmark cannot measure: a set-up problem, a page answering with the wrong status."""


@dataclasses.dataclass
class Row:
    """One line of the table.

    median, p95: of the samples, in `unit`. baseline: the same figure for the baseline measured
    in the same run (or the same count at the other scale). ratio: median / baseline.
    goal: what the figure must meet, in words; status: PASS, MISSED, NOT_BUILT or INFO.
    """

    name: str
    metric: str
    median: float | None = None
    p95: float | None = None
    unit: str = ""
    baseline: float | None = None
    ratio: float | None = None
    goal: str = ""
    status: str = INFO
    note: str = ""
    n: int | None = None  # samples behind median and p95
    benchmark: str = ""  # filled in by the runner

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; use one of {STATUSES}")


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Context:
    """What a benchmark is told about the run."""

    mode: str = "quick"
    requests: int | None = None  # --requests: samples per figure, overriding the mode's default
    reseed: bool = False  # --reseed: rebuild seeded data even when a matching seed exists
    log: Callable[[str], None] = _log
    # Facts a benchmark wants in the report's header (PostgreSQL version, fleet size...).
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def samples(self, quick: int, full: int) -> int:
        """How many samples to take: --requests if given, else the mode's default."""
        return self.requests or (quick if self.quick else full)


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolating linearly between the two nearest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def below(value: float, limit: float) -> str:
    return PASS if value < limit else MISSED


def timed_row(name: str, samples_ms: Sequence[float], *, baseline_ms: float | None,
              limit_ms: float | None = None, note: str = "") -> Row:
    """A server-time row: median and p95 of the samples, ratio of medians to the baseline, and
    a goal on the p95 when `limit_ms` is given."""
    med, high = median(samples_ms), p95(samples_ms)
    return Row(
        name=name, metric="server time", median=med, p95=high, unit="ms",
        baseline=baseline_ms, ratio=ratio(med, baseline_ms),
        goal=f"p95 < {limit_ms:g} ms" if limit_ms is not None else "",
        status=below(high, limit_ms) if limit_ms is not None else INFO,
        note=note, n=len(samples_ms),
    )


# --- the runner -------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    mode: str
    command: str
    started_at: dt.datetime
    seconds: float = 0.0
    rows: list[Row] = dataclasses.field(default_factory=list)
    benchmarks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [b for b in self.benchmarks if b["status"] == "error"]

    @property
    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.status == MISSED]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "command": self.command,
            "mode": self.mode,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 1),
            "environment": self.info,
            "benchmarks": self.benchmarks,
            "missed": len(self.missed),
            "errors": len(self.errors),
            "rows": [dataclasses.asdict(r) for r in self.rows],
        }


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        pass
    return info


def run(benchmarks: Iterable[Any], ctx: Context, *, command: str = "python -m bench") -> Report:
    """Run each benchmark (a `registry.Benchmark`) in turn; one that raises becomes an ERROR
    row and the others still run."""
    report = Report(mode=ctx.mode, command=command, started_at=dt.datetime.now(dt.UTC))
    start = time.perf_counter()
    for bench in benchmarks:
        ctx.log(f"{bench.name}: {bench.title} ({ctx.mode})")
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"name": bench.name, "title": bench.title}
        try:
            rows = list(bench.func(ctx))
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc)).rstrip()
            ctx.log(f"{bench.name} failed:\n{detail}")
            message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            rows = [Row(name=bench.title, metric="-", status=ERROR, note=message)]
            entry.update(status="error", error=message)
        else:
            entry["status"] = "ok"
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        for row in rows:
            row.benchmark = bench.name
        report.rows.extend(rows)
        report.benchmarks.append(entry)
    report.seconds = time.perf_counter() - start
    report.info = {**environment(), **ctx.info}
    return report


# --- output -----------------------------------------------------------------------------------

COLUMNS = ("Benchmark", "What", "Measure", "Median", "p95", "Unit", "Baseline", "Ratio",
           "Goal", "Result", "Note")
_NUMERIC = {"Median", "p95", "Baseline", "Ratio"}


def fmt_number(value: float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}×"
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def cells(row: Row) -> list[str]:
    return [
        row.benchmark, row.name, row.metric, fmt_number(row.median), fmt_number(row.p95),
        row.unit, fmt_number(row.baseline), fmt_ratio(row.ratio), row.goal or "–", row.status,
        row.note,
    ]


def format_table(rows: Sequence[Row]) -> str:
    """An aligned plain-text table, numbers right-aligned."""
    table = [list(COLUMNS)] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if COLUMNS[i] in _NUMERIC else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table[1:]]
    return "\n".join(out)


def summary(report: Report) -> str:
    lines = []
    for row in report.missed:
        figure = f"p95 {fmt_number(row.p95)} {row.unit}" if row.p95 is not None else (
            f"{fmt_number(row.median)} {row.unit}")
        lines.append(f"MISSED  {row.benchmark}: {row.name} ({row.metric}): {figure}, "
                     f"goal {row.goal}")
    for entry in report.errors:
        lines.append(f"ERROR   {entry['name']}: {entry['error']}")
    not_built = [r for r in report.rows if r.status == NOT_BUILT]
    for row in not_built:
        lines.append(f"not built  {row.benchmark}: {row.name}")
    if not report.missed and not report.errors:
        lines.append("All goals met." if any(r.status == PASS for r in report.rows)
                     else "No goals were checked.")
    else:
        lines.append(f"{len(report.missed)} goal(s) MISSED, {len(report.errors)} error(s).")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(report: Report) -> str:
    env = report.info
    facts = [f"`{report.command}`", report.started_at.strftime("%Y-%m-%d %H:%M UTC"),
             f"{report.seconds:.0f} s"]
    facts += [f"{key.replace('_', ' ')} {value}" for key, value in env.items()
              if key != "load_average"]
    if "load_average" in env:
        facts.append("load " + " / ".join(str(x) for x in env["load_average"]))
    out = ["Benchmarks: " + ", ".join(facts) + ".", ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join("---:" if c in _NUMERIC else "---" for c in COLUMNS) + "|")
    for row in report.rows:
        values = cells(row)
        values[9] = f"**{values[9]}**" if row.status in (MISSED, ERROR) else values[9]
        out.append("| " + " | ".join(_md_cell(v) for v in values) + " |")
    return "\n".join(out) + "\n"


def write(report: Report, json_path: Path) -> tuple[Path, Path]:
    """Write the JSON report and, beside it with the suffix .md, the Markdown table."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    md_path = json_path.with_suffix(".md")
    json_path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    md_path.write_text(format_markdown(report))
    return json_path, md_path
