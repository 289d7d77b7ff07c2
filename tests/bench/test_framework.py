"""The bench framework: statistics, rows, the runner, the table, JSON and Markdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli, framework, registry
from bench.django_env import database_url, redact
from bench.framework import MISSED, NOT_BUILT, PASS, Context, Row


def test_percentiles_interpolate_between_ranks() -> None:
    values = list(range(1, 101))
    assert framework.median(values) == 50.5
    assert framework.p95(values) == pytest.approx(95.05)
    assert framework.median([4.0]) == framework.p95([4.0]) == 4.0
    assert framework.median([3, 1, 2, 4]) == 2.5
    with pytest.raises(ValueError):
        framework.median([])


def test_a_timed_row_is_judged_on_its_p95_and_compared_with_the_baseline() -> None:
    row = framework.timed_row("Page", [10.0] * 19 + [500.0], baseline_ms=2.0, limit_ms=150)
    assert (row.median, row.ratio, row.n, row.unit) == (10.0, 5.0, 20, "ms")
    assert row.p95 == pytest.approx(34.5) and row.status == PASS
    slow = framework.timed_row("Page", [10.0] * 18 + [500.0] * 2, baseline_ms=2.0, limit_ms=150)
    assert slow.status == MISSED and slow.goal == "p95 < 150 ms"
    with pytest.raises(ValueError):
        Row("x", "y", status="meh")


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the fake benchmarks below are registered."""
    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "discover", lambda package="": None)

    @registry.register("fake", title="A fake benchmark", order=2)
    def fake(ctx: Context) -> list[Row]:
        ctx.info["fleet"] = "none at all"
        return [
            framework.timed_row("Fast page", [1.0, 2.0, 3.0], baseline_ms=0.5, limit_ms=20),
            framework.timed_row("Slow | page", [100.0, 120.0, 300.0], baseline_ms=0.5,
                                limit_ms=150),
            Row("Queries", "SQL queries", median=5, unit="queries", baseline=5, ratio=1.0,
                goal="same at both sizes", status=PASS),
            Row("Drill report", "server time", status=NOT_BUILT, note="no page yet"),
        ]

    @registry.register("broken", title="A benchmark that cannot measure", order=1)
    def broken(ctx: Context) -> list[Row]:
        raise framework.BenchError("no database here")


def test_it_prints_an_aligned_table_writes_json_and_markdown_and_exits_0_on_a_miss(
    fake_registry: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert cli.main(["--quick", "--only", "fake", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith(("Benchmark", "fake"))]
    header = table[0]
    assert len(table) == 5
    # Numbers are right-aligned under their heading.
    for heading, value in (("Median", "2.00"), ("p95", "282"), ("Ratio", "240×")):
        right = header.index(heading) + len(heading)
        assert any(line[:right].endswith(value) for line in table[1:]), heading
    assert "MISSED  fake: Slow | page (server time): p95 282 ms, goal p95 < 150 ms" in printed
    assert "not built  fake: Drill report" in printed

    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["missed"] == 1 and report["errors"] == 0
    assert report["environment"]["fleet"] == "none at all"
    assert [r["status"] for r in report["rows"]] == ["pass", "MISSED", "pass", "not built"]
    first = report["rows"][0]
    assert first["benchmark"] == "fake" and first["median"] == 2.0 and first["ratio"] == 4.0
    md = out.with_suffix(".md").read_text()
    assert "| Benchmark | What |" in md and "| **MISSED** |" in md and "Slow \\| page" in md


def test_a_benchmark_that_fails_is_an_error_row_and_a_nonzero_exit(
    fake_registry: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert cli.main(["--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "ERROR   broken: no database here" in printed
    report = json.loads(out.read_text())
    assert [b["name"] for b in report["benchmarks"]] == ["broken", "fake"]  # by order
    assert report["rows"][0]["status"] == "ERROR" and report["mode"] == "full"


def test_it_refuses_an_unknown_benchmark(
    fake_registry: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--only", "fake,nope"]) == 2
    assert "no benchmark named nope (known: broken, fake)" in capsys.readouterr().err


def test_the_real_registry_has_the_pages_benchmark() -> None:
    registry.discover()
    assert "pages" in [b.name for b in registry.benchmarks()]


def test_every_benchmark_module_imports_before_django_is_set_up() -> None:
    # `python -m bench` discovers the benchmarks first and sets Django up after: a module that
    # imports a model at its top breaks the whole command, which pytest (Django already set up)
    # would never see.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-m", "bench", "--list"], env=env, text=True,
                          capture_output=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert "kube_sync" in done.stdout and "visibility" in done.stdout


def test_the_bench_database_is_never_the_consoles_own() -> None:
    default = "postgres://postgres@127.0.0.1:5432/dr_console_bench"
    assert database_url({"DR_VAR_DIR": "/nonexistent"}) == default
    assert database_url({"DR_VAR_DIR": "/nonexistent",
                         "DATABASE_URL": "sqlite:///var/console.sqlite3"}) == default
    assert database_url({"DATABASE_URL": "postgres://u:p%40ss@db:5433/dr_console"}) == (
        "postgres://u:p%40ss@db:5433/dr_console_bench")
    assert database_url({"BENCH_DATABASE_URL": "postgres://x@y/z",
                         "DATABASE_URL": "postgres://u@h/dr_console"}) == "postgres://x@y/z"
    assert redact("postgres://u:secret@h/db") == "postgres://u:***@h/db"


def test_the_password_scripts_test_sh_keeps_is_used(tmp_path: Path) -> None:
    (tmp_path / "pg_password").write_text("s3cr/t\n")
    assert database_url({"DR_VAR_DIR": str(tmp_path)}) == (
        "postgres://postgres:s3cr%2Ft@127.0.0.1:5432/dr_console_bench")
