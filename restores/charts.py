"""Server-rendered SVG line charts: a measure (RTO, RPO) over a series of drill runs against
its objective. Pure Python, no script: every text is escaped, every position is an SVG
attribute and every colour a presentation attribute (stroke, fill), never a style attribute,
so the picture passes the pages' Content-Security-Policy and renders the same in the PDF.

    chart = line_chart([ChartPoint(at, 61.5, ok=True, label="hippo"), ...],
                       objective=300, title="RTO")

A point is failing when its run failed or its value is over the objective: it is drawn as
a red ring; a run without a value (missed, or failed before it was measured) as a red cross
on the baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 200
# The plot area inside the picture: room for the value labels on the left and the dates below.
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 28
INK, MUTED, LINE, OK, BAD, OBJECTIVE = ("#1d2430", "#6b7380", "#1f5fbf", "#1d7f46",
                                        "#b3261e", "#a35b00")
NO_DATA = "No finished run to draw yet."


@dataclasses.dataclass(frozen=True)
class ChartPoint:
    """One run: when, what it measured (None: nothing, e.g. a missed run), whether the run
    passed, and its words in the tooltip."""

    at: dt.datetime
    value: float | None
    ok: bool = True
    label: str = ""
    objective: float | None = None  # the run's own objective, when it differs from the line's

    def failing(self, objective: float | None) -> bool:
        limit = self.objective if self.objective is not None else objective
        return (not self.ok or self.value is None
                or (limit is not None and self.value > limit))


def duration_text(seconds: float | None) -> str:
    """61.5 → "61.5 s", 4000 → "1 h 6 min": what an axis or a tooltip says."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:g} s" if seconds == int(seconds) else f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours, minutes = divmod(int(minutes), 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _scale(values: Sequence[float], objective: float | None) -> float:
    top = max([*values, objective or 0.0, 1.0])
    return top * 1.15


def line_chart(points: Iterable[ChartPoint], *, objective: float | None, title: str,
               chart_id: str = "", width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    """The series as one `<svg>`: oldest on the left, the objective as a dashed line,
    failing points marked. An empty series is a picture that says so."""
    series = sorted(points, key=lambda p: p.at)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    words = f"{title}: {len(series)} run(s)" + (
        f", objective {duration_text(objective)}" if objective is not None else "")
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg"{ident} role="img" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'aria-label="{escape(words)}">',
           f"<title>{escape(words)}</title>",
           f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold" fill="{INK}">'
           f"{escape(title)}</text>",
           f'<rect class="chart-frame" x="{LEFT}" y="{TOP}" width="{plot_w}" '
           f'height="{plot_h}" fill="none" stroke="#dde1e7"/>']
    if not series:
        out.append(f'<text x="{LEFT + 8}" y="{TOP + plot_h / 2:.0f}" font-size="12" '
                   f'fill="{MUTED}">{escape(NO_DATA)}</text></svg>')
        return mark_safe("".join(out))  # noqa: S308 - escaped above
    values = [p.value for p in series if p.value is not None]
    top = _scale(values, objective)
    first, last = series[0].at, series[-1].at
    spread = (last - first).total_seconds()

    def x(at: dt.datetime) -> float:
        if spread <= 0:
            return LEFT + plot_w / 2
        return LEFT + plot_w * (at - first).total_seconds() / spread

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    base = TOP + plot_h
    out += [f'<text x="{LEFT - 6}" y="{TOP + 4}" font-size="10" text-anchor="end" '
            f'fill="{MUTED}">{escape(duration_text(top))}</text>',
            f'<text x="{LEFT - 6}" y="{base}" font-size="10" text-anchor="end" '
            f'fill="{MUTED}">0</text>',
            f'<text x="{LEFT}" y="{height - 8}" font-size="10" fill="{MUTED}">'
            f"{escape(_day(first))}</text>"]
    if spread > 0:
        out.append(f'<text x="{LEFT + plot_w}" y="{height - 8}" font-size="10" '
                   f'text-anchor="end" fill="{MUTED}">{escape(_day(last))}</text>')
    if objective is not None:
        oy = _num(y(objective))
        out += [f'<line class="chart-objective" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{oy}" '
                f'y2="{oy}" stroke="{OBJECTIVE}" stroke-width="1.5" stroke-dasharray="6 4"/>',
                f'<text x="{LEFT + plot_w - 4}" y="{_num(y(objective) - 4)}" font-size="10" '
                f'text-anchor="end" fill="{OBJECTIVE}">objective '
                f"{escape(duration_text(objective))}</text>"]
    line = " ".join(f"{_num(x(p.at))},{_num(y(p.value))}" for p in series if p.value is not None)
    if line:
        out.append(f'<polyline class="chart-line" points="{line}" fill="none" '
                   f'stroke="{LINE}" stroke-width="2"/>')
    out += [_marker(p, x(p.at), y(p.value) if p.value is not None else base,
                    p.failing(objective)) for p in series]
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped, the rest numbers


def _marker(point: ChartPoint, px: float, py: float, failing: bool) -> str:
    when = point.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tip = escape(" · ".join(part for part in (
        point.label, when, duration_text(point.value) if point.value is not None
        else "not measured", "failing" if failing else "ok") if part))
    cx, cy = _num(px), _num(py)
    if point.value is None:
        d = f"M{_num(px - 4)},{_num(py - 4)} L{_num(px + 4)},{_num(py + 4)} " \
            f"M{_num(px - 4)},{_num(py + 4)} L{_num(px + 4)},{_num(py - 4)}"
        return (f'<path class="chart-point chart-fail" d="{d}" stroke="{BAD}" '
                f'stroke-width="2" fill="none"><title>{tip}</title></path>')
    if failing:
        return (f'<circle class="chart-point chart-fail" cx="{cx}" cy="{cy}" r="5" '
                f'fill="#fff" stroke="{BAD}" stroke-width="2.5"><title>{tip}</title></circle>')
    return (f'<circle class="chart-point chart-ok" cx="{cx}" cy="{cy}" r="3.5" fill="{OK}">'
            f"<title>{tip}</title></circle>")


def _day(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d")


@dataclasses.dataclass(frozen=True)
class ObjectiveCharts:
    rto: SafeString
    rpo: SafeString


def run_charts(runs: Iterable[object], *, rto_objective: float | None,
               rpo_objective: float | None, chart_id: str = "",
               label: str = "cluster") -> ObjectiveCharts:
    """RTO and RPO charts of drill runs (anything with slot_at, outcome, rto_seconds,
    rpo_seconds and the run's objectives; `label` names the attribute path for the tooltip:
    "cluster" gives the run's cluster name). Queued and running runs are not drawn."""
    done = [r for r in runs if getattr(r, "outcome", "") in ("passed", "failed", "missed")]

    def points(measure: str) -> list[ChartPoint]:
        return [ChartPoint(at=r.slot_at, value=getattr(r, f"{measure}_seconds"),  # type: ignore[attr-defined]
                           ok=r.outcome == "passed",  # type: ignore[attr-defined]
                           label=_label(r, label),
                           objective=getattr(r, f"{measure}_objective_seconds", None))
                for r in done]

    suffix = f"-{chart_id}" if chart_id else ""
    return ObjectiveCharts(
        line_chart(points("rto"), objective=rto_objective, title="RTO (measured, per run)",
                   chart_id=f"chart-rto{suffix}" if chart_id else ""),
        line_chart(points("rpo"), objective=rpo_objective, title="RPO (measured, per run)",
                   chart_id=f"chart-rpo{suffix}" if chart_id else ""),
    )


def _label(run: object, attribute: str) -> str:
    value = getattr(run, attribute, None)
    if value is None:
        return ""
    return str(getattr(value, "name", value))
