"""The SVG charts: well-formed, escaped, no style attribute (the CSP), the objective drawn,
failing points marked."""

from __future__ import annotations

import datetime as dt
import types
import xml.etree.ElementTree as ET

from restores import charts
from restores.charts import ChartPoint, line_chart, run_charts

SVG = "{http://www.w3.org/2000/svg}"
T = dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC)


def _tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def _points(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if kind in (e.get("class") or "").split()]


def test_a_series_is_a_well_formed_svg_with_the_objective_and_failing_points_marked() -> None:
    svg = line_chart([ChartPoint(T + dt.timedelta(days=i), v, ok=ok)
                      for i, (v, ok) in enumerate([(60, True), (400, True), (90, False),
                                                   (None, False), (120, True)])],
                     objective=300, title="RTO", chart_id="c1")
    root = _tree(svg)
    assert root.tag == f"{SVG}svg" and root.get("id") == "c1"
    objective = _points(root, "chart-objective")
    assert len(objective) == 1 and objective[0].get("stroke-dasharray")
    # over the objective, failed, and not measured: three failing; two ok
    assert len(_points(root, "chart-fail")) == 3 and len(_points(root, "chart-ok")) == 2
    assert len(_points(root, "chart-line")[0].get("points", "").split()) == 4
    assert "objective 5 min" in svg


def test_nothing_in_a_chart_needs_a_style_attribute() -> None:
    svg = line_chart([ChartPoint(T, 10.0)], objective=5, title="RPO")
    assert all(e.get("style") is None for e in _tree(svg).iter())
    assert "<style" not in svg and "<script" not in svg


def test_every_text_is_escaped() -> None:
    svg = line_chart([ChartPoint(T, 10.0, label='<script>alert("x")</script>')],
                     objective=None, title="RTO & <b>RPO</b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    _tree(svg)  # still well-formed


def test_an_empty_series_says_there_is_nothing_to_draw() -> None:
    svg = line_chart([], objective=300, title="RTO")
    assert charts.NO_DATA in svg
    _tree(svg)


def test_one_point_and_a_point_under_a_runs_own_objective_are_drawn() -> None:
    # The run's own objective (60) wins over the line's (300): 61.5 is failing.
    svg = line_chart([ChartPoint(T, 61.5, objective=60)], objective=300, title="RTO")
    assert len(_points(_tree(svg), "chart-fail")) == 1


def test_run_charts_draw_finished_runs_only() -> None:
    def run(outcome: str, rto: float | None, day: int) -> object:
        return types.SimpleNamespace(slot_at=T + dt.timedelta(days=day), outcome=outcome,
                                     rto_seconds=rto, rpo_seconds=5.0,
                                     rto_objective_seconds=100, rpo_objective_seconds=10,
                                     cluster=types.SimpleNamespace(name="hippo"))

    drawn = run_charts([run("passed", 50, 0), run("failed", 150, 1), run("running", None, 2),
                        run("missed", None, 3)], rto_objective=100, rpo_objective=10,
                       chart_id="p1")
    rto = _tree(drawn.rto)
    assert rto.get("id") == "chart-rto-p1" and _tree(drawn.rpo).get("id") == "chart-rpo-p1"
    assert len(_points(rto, "chart-point")) == 3  # the running one is not drawn
    assert len(_points(rto, "chart-fail")) == 2
    assert "hippo" in drawn.rto


def test_durations_read_at_a_glance() -> None:
    assert [charts.duration_text(v) for v in (None, 5, 61.5, 600, 7200, 200_000)] == [
        "–", "5 s", "61.5 s", "10 min", "2 h", "2 d 7 h"]
