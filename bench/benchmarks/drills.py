"""Drills at fleet scale: the scheduler's beat at 1,000 clusters and 1,000 plans, the Drills
page and the audit report at 1,000 clusters and 10,000 runs, and the report's PDF.

In a fresh schema of the bench database, seeded in bulk: N clusters in ten namespaces (one
repo, one backup each), N plans (one per cluster, daily at 03:00 UTC, every one due at the
measured beat) and, for the pages, a run per cluster on each of the last 10 days (10,000
runs: sealed, with checks in their evidence; one in ten failed or missed), all inside the
report's period. The platform is the in-memory fake of the tests (a drill's start asks it
whether the scratch name is free) and no task is sent.

- the beat with every plan due (N runs queued, DR_DRILL_CONCURRENCY started) and the steady
  beat after it: time and SQL queries, at 100 and at 1,000: the counts must be equal;
- GET of the Drills page and of the report (the last 30 days: every cluster, and one
  namespace), interleaved with a trivial view: p95 < 150 ms;
- the PDF of one namespace's last three days (every run in full): its generation time,
  reported on its own (no goal).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from bench.benchmarks import support_console as console
from bench.framework import MISSED, PASS, Context, Row, median, timed_row
from bench.registry import register

SCHEMA = "bench_drills"
SIZES = (100, 1_000)
RUNS_PER_CLUSTER = 10
GOAL_MS = 150.0
SLOT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)


@register("drills", title="Drill scheduler, Drills page and audit report at 1,000 clusters",
          order=50)
def drills(ctx: Context) -> list[Row]:
    samples = ctx.samples(quick=20, full=100)
    rows: list[Row] = []
    beats: dict[int, tuple[int, float, int, float]] = {}
    with console.live_schema(SCHEMA):
        from unittest import mock

        from restores import platforms
        from tests.fakes import FakePlatform

        fake = FakePlatform()
        platforms.override("local", fake)
        try:
            with mock.patch("restores.services.dispatch.send"), \
                    mock.patch("restores.services.dispatch.send_quietly"):
                for size in SIZES:
                    _clear()
                    _seed(size, fake)
                    beats[size] = _beats()
                    ctx.log(f"{size:,} clusters and plans: due beat {beats[size][0]} queries "
                            f"in {beats[size][1]:.2f} s, steady {beats[size][2]} queries in "
                            f"{beats[size][3] * 1000:.0f} ms")
                _seed_runs(SIZES[-1])
                ctx.log(f"{SIZES[-1] * RUNS_PER_CLUSTER:,} runs seeded")
                rows += _pages(ctx, samples)
        finally:
            platforms.override("local", None)
    small, large = beats[SIZES[0]], beats[SIZES[-1]]
    for label, i, t in (("every plan due", 0, 1), ("steady (nothing due)", 2, 3)):
        same = small[i] == large[i]
        rows.append(Row(
            name=f"Beat, {label}", metric="SQL queries", median=large[i], unit="queries",
            baseline=small[i], ratio=large[i] / small[i] if small[i] else None,
            goal=f"same at {SIZES[0]:,} and {SIZES[-1]:,} plans", status=PASS if same else MISSED,
            note=f"{small[i]} at {SIZES[0]:,} clusters and plans, {large[i]} at "
                 f"{SIZES[-1]:,}; the due beat queues one run per plan and starts "
                 "DR_DRILL_CONCURRENCY of them"))
        rows.append(Row(name=f"Beat, {label}, 1,000 plans", metric="wall time",
                        median=round(large[t], 3), unit="s", baseline=round(small[t], 3),
                        ratio=large[t] / small[t] if small[t] else None,
                        note=f"baseline: the same beat at {SIZES[0]:,} plans"))
    return rows


def _clear() -> None:
    """The schema's rows but the audit log's (append-only: it just grows)."""
    from restores.models import Cluster, DrillPlan, DrillRun, Operation

    DrillRun.objects.all().delete()
    Operation.objects.all().delete()
    DrillPlan.objects.all().delete()
    Cluster.objects.all().delete()


def _seed(size: int, fake: Any) -> None:
    from restores.models import Backup, Cluster, DrillPlan, Repository
    from tests.fakes import make_backup

    names = [f"pg-{i:05d}" for i in range(size)]
    fake.clusters_.clear()
    for name in names:
        fake.add(name, backups=[make_backup("20261124-020000F", stop=SLOT)])
    clusters = Cluster.objects.bulk_create(
        [Cluster(platform="local", namespace=_namespace(i), name=n, role="primary",
                 state="ready") for i, n in enumerate(names)])
    repos = Repository.objects.bulk_create(
        [Repository(cluster=c, name="repo1", earliest_recovery=SLOT - dt.timedelta(days=1),
                    latest_recovery=SLOT + dt.timedelta(days=30)) for c in clusters])
    Backup.objects.bulk_create([Backup(
        repository=r, label="20261124-020000F", type="full", started_at=SLOT,
        stopped_at=SLOT, database_size=30_000_000, delta_size=30_000_000,
        repo_size=4_000_000, repo_delta=4_000_000, wal_start="000000010000000000000002",
        wal_stop="000000010000000000000003") for r in repos])
    DrillPlan.objects.bulk_create([DrillPlan(
        name=f"daily {n}", platform="local", namespace=_namespace(i), cluster_name=n,
        schedule="0 3 * * *", rto_objective_seconds=900, rpo_objective_seconds=3600,
        policy="ISO 27001 A.8.13, daily", created_at=SLOT - dt.timedelta(days=2),
        scheduled_through=SLOT - dt.timedelta(minutes=1),
        checks=[{"kind": "sql", "name": "orders", "database": "app",
                 "query": "select count(*) from orders", "compare": ">=",
                 "expected": "1000"}]) for i, n in enumerate(names)])


def _namespace(i: int) -> str:
    """Ten teams of a tenth of the fleet each."""
    return f"team-{i % 10}"


def _beats() -> tuple[int, float, int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from restores.services import drill_schedule

    now = SLOT + dt.timedelta(minutes=1)
    with CaptureQueriesContext(connection) as due:
        t0 = time.perf_counter()
        drill_schedule.beat(now=now)
        due_s = time.perf_counter() - t0
    with CaptureQueriesContext(connection) as steady:
        t0 = time.perf_counter()
        drill_schedule.beat(now=now + dt.timedelta(seconds=30))
        steady_s = time.perf_counter() - t0
    return len(due), due_s, len(steady), steady_s


def _seed_runs(size: int) -> None:
    """RUNS_PER_CLUSTER sealed runs per cluster, one a day."""
    from django.utils import timezone

    from restores.models import Cluster, DrillPlan, DrillRun, Operation
    from restores.models.drills import evidence_digest

    DrillRun.objects.all().delete()  # the beats' runs: the pages get these instead
    Operation.objects.all().delete()
    rng = random.Random(11)
    now = timezone.now()
    plans = {p.cluster_name: p for p in DrillPlan.objects.all()}
    runs = []
    for cluster in Cluster.objects.all():
        plan = plans[cluster.name]
        for i in range(RUNS_PER_CLUSTER):
            # Daily, as the plan says: the last RUNS_PER_CLUSTER days' slots at 03:00.
            at = (now - dt.timedelta(days=i + 1)).replace(hour=3, minute=0, second=0,
                                                          microsecond=0)
            outcome = rng.choices(["passed", "failed", "missed"], [90, 7, 3])[0]
            rto = None if outcome == "missed" else round(rng.uniform(20, 1200), 1)
            rpo = None if outcome == "missed" else round(rng.uniform(5, 4000), 1)
            checks = [] if outcome == "missed" else [
                {"check": "accepts writes", "kind": "restore", "ok": True, "detail": "ok"},
                {"check": "orders", "kind": "sql", "ok": outcome == "passed",
                 "detail": "returned 1204" if outcome == "passed" else "returned 12",
                 "command": "psql -c 'select count(*) from orders'", "at": at.isoformat()}]
            evidence = {"run": None, "outcome": outcome, "result": {"checks": checks,
                        "rto_seconds": rto, "rpo_seconds": rpo}}
            runs.append(DrillRun(
                plan=plan, cluster=cluster, slot_at=at, outcome=outcome,
                reason="" if outcome == "passed" else "orders: returned 12, expected >= 1000",
                scenario={"repo": "repo1", "point_rule": "latest",
                          "scratch": f"local/{cluster.name}-drill-{i:06x}"},
                rto_seconds=rto, rpo_seconds=rpo, rto_objective_seconds=900,
                rpo_objective_seconds=3600, evidence=evidence,
                evidence_hash=evidence_digest(evidence), sealed_at=at, finished_at=at,
                remediation_status="" if outcome == "passed" else "open"))
    DrillRun.objects.bulk_create(runs, batch_size=2000)
    _settle()


def _settle() -> None:
    """The seeded tables as autovacuum leaves them a minute after a bulk insert (PostgreSQL
    13+ vacuums inserted tables too): statistics gathered, the visibility map set, so the
    planner sees 10,000 runs rather than its guess for a table never analyzed."""
    from django.db import connection

    from restores.models import Cluster, DrillPlan, DrillRun

    with connection.cursor() as cursor:
        for model in (Cluster, DrillPlan, DrillRun):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _pages(ctx: Context, samples: int) -> list[Row]:
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse
    from django.utils import timezone

    from bench.pages import bench_user
    from bench.urls import BASELINE_PATH
    from dr_console import heap

    client = Client()
    client.force_login(bench_user())
    today = timezone.now().date()
    period = f"from={today - dt.timedelta(days=30)}&to={today}&tz=Europe/Paris"
    team = f"{period}&platform=local&namespace=team-3"
    targets = {
        "drills": ("Drills page", reverse("restores:drills")),
        "report": ("Audit report, 30 days, every cluster (HTML)",
                   f"{reverse('restores:drill_report')}?{period}"),
        "team": ("Audit report, 30 days, one namespace of 100 clusters (HTML)",
                 f"{reverse('restores:drill_report')}?{team}"),
    }
    notes = {"drills": f"{SIZES[-1]:,} plans, 10 a page, failing and overdue first",
             "report": f"{SIZES[-1]:,} clusters and plans, {SIZES[-1] * RUNS_PER_CLUSTER:,} "
                       "runs in the period",
             "team": f"{SIZES[-1] // 10:,} clusters, {SIZES[-1] * RUNS_PER_CLUSTER // 10:,} runs"}
    times: dict[str, list[float]] = {k: [] for k in [*targets, "baseline"]}
    with override_settings(ROOT_URLCONF="bench.urls"):
        for title, path in targets.values():
            answer = client.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"{title}: GET {path} answered {answer.status_code}")
        heap.settle()  # as the web worker does once loaded (dr_console/wsgi.py)
        for _ in range(samples):
            for key, path in [*((k, p) for k, (_, p) in targets.items()),
                              ("baseline", BASELINE_PATH)]:
                t0 = time.perf_counter()
                client.get(path)
                times[key].append((time.perf_counter() - t0) * 1000)
        # The PDF holds every run in full: one namespace, the last three days.
        pdf_query = (f"from={today - dt.timedelta(days=2)}&to={today}&tz=Europe/Paris"
                     "&platform=local&namespace=team-3")
        pdf_path = f"{reverse('restores:drill_report_pdf')}?{pdf_query}"
        pdf_times, size = [], 0
        for _ in range(1 if ctx.quick else 3):
            t0 = time.perf_counter()
            answer = client.get(pdf_path)
            pdf_times.append(time.perf_counter() - t0)
            size = len(answer.content)
    base = median(times["baseline"])
    rows = [timed_row(title, times[key], baseline_ms=base, limit_ms=GOAL_MS, note=notes[key])
            for key, (title, _) in targets.items()]
    rows.append(Row(name="Audit report, 3 days, one namespace (PDF)", metric="generation time",
                    median=round(median(pdf_times), 2), unit="s",
                    note=f"every run in full, ~300 runs; WeasyPrint; {size / 1024:,.0f} KiB; "
                         "reported separately, no goal"))
    return rows
