"""The Drills page's plans: each plan with its last runs and its RTO / RPO charts, failing
and overdue ones first, a page at a time; and one cluster's chart when the page is filtered
by it.

Five queries whatever the number of plans, clusters or runs: the plans (what their order
needs), each one's newest finished run and newest pass (windows over the runs' plan index),
which order them all, then the page's plans in full and their last runs, which its charts
draw. A schedule's period is worked
out once per schedule and zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db.models import F, Max, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from restores import schedules
from restores.charts import ObjectiveCharts, run_charts
from restores.models import DrillPlan, DrillRun

CHART_RUNS = 20  # the runs a plan's chart draws, newest
PLANS_PER_PAGE = 10


@dataclasses.dataclass(frozen=True)
class PlanStatus:
    plan: DrillPlan
    runs: list[DrillRun]  # newest first, at most CHART_RUNS
    last_pass: dt.datetime | None
    period: dt.timedelta | None
    overdue: bool  # enabled, and no pass within its period (once one period has passed)
    failing: bool  # its newest finished run failed or was missed
    charts: ObjectiveCharts

    @property
    def last(self) -> DrillRun | None:
        """The newest finished run."""
        return next((r for r in self.runs if r.outcome in DrillRun.DONE), None)


@dataclasses.dataclass(frozen=True)
class PlanPage:
    rows: list[PlanStatus]
    total: int
    failing: int
    overdue: int
    page: int
    pages: int

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def plan_statuses(*, run_scope: Q | None = None, plan_scope: Q | None = None,
                  now: dt.datetime | None = None, page: int = 1,
                  per_page: int = PLANS_PER_PAGE) -> PlanPage:
    """The plans the viewer may see (`plan_scope`: a cluster filter without prefix, applied
    to the plan's platform and namespace; or a run on a cluster `run_scope`, prefix
    "cluster__", lets them see), failing first, then overdue, then by name; one page of them
    with their runs and charts. Runs shown are only those of clusters in `run_scope`."""
    now = now or timezone.now()
    run_scope = run_scope or Q()
    plan_scope = plan_scope or Q()
    if plan_scope.children:  # (Q() | x is x: an empty scope, every plan, needs no OR)
        visible = DrillRun.objects.filter(run_scope, plan__isnull=False).values("plan_id")
        plan_scope = plan_scope | Q(pk__in=visible)
    # What the order needs of every plan; the page's plans are read in full below.
    plans = list(DrillPlan.objects.filter(plan_scope).only(
        "name", "enabled", "schedule", "time_zone", "created_at").order_by("name"))
    if not plans:
        return PlanPage([], 0, 0, 0, 1, 1)
    ranked = Window(RowNumber(), partition_by=F("plan_id"),
                    order_by=[F("slot_at").desc(), F("id").desc()])
    mine = DrillRun.objects.filter(run_scope, plan__isnull=False)
    last_done = dict(mine.filter(outcome__in=DrillRun.DONE).annotate(rank=ranked)
                     .filter(rank=1).values_list("plan_id", "outcome"))
    passes = dict(mine.filter(outcome=DrillRun.Outcome.PASSED).order_by().values("plan_id")
                  .annotate(last=Max("slot_at")).values_list("plan_id", "last"))
    periods = schedules.Periods(now)
    ordered = []
    for plan in plans:
        period = periods.of(plan.schedule, plan.time_zone)
        last_pass = passes.get(plan.pk)
        overdue = bool(plan.enabled and period is not None
                       and plan.created_at < now - period
                       and (last_pass is None or last_pass < now - period))
        failing = last_done.get(plan.pk) in DrillRun.DEFICIENT
        ordered.append((plan, period, last_pass, overdue, failing))
    ordered.sort(key=lambda s: (not s[4], not s[3], s[0].name))
    pages = max(1, -(-len(ordered) // per_page))
    page = min(max(page, 1), pages)
    chosen = ordered[(page - 1) * per_page: page * per_page]
    full = DrillPlan.objects.select_related("owner").in_bulk([p.pk for p, *_ in chosen])
    chosen = [(full[p.pk], *rest) for p, *rest in chosen]
    runs: dict[int, list[DrillRun]] = {}
    for run in (DrillRun.objects.filter(run_scope, plan_id__in=[p.pk for p, *_ in chosen])
                .annotate(rank=ranked).filter(rank__lte=CHART_RUNS).select_related("cluster")
                .order_by("plan_id", "-slot_at", "-id")):
        runs.setdefault(run.plan_id, []).append(run)  # type: ignore[arg-type]
    rows = [PlanStatus(plan, runs.get(plan.pk, []), last_pass, period, overdue, failing,
                       run_charts(runs.get(plan.pk, []), rto_objective=plan.rto_objective_seconds,
                                  rpo_objective=plan.rpo_objective_seconds,
                                  chart_id=f"plan-{plan.pk}"))
            for plan, period, last_pass, overdue, failing in chosen]
    return PlanPage(rows, len(ordered), sum(1 for s in ordered if s[4]),
                    sum(1 for s in ordered if s[3]), page, pages)


def cluster_charts(cluster_id: int, *, run_scope: Q | None = None) -> ObjectiveCharts | None:
    """The RTO / RPO charts of one cluster's last runs (any plan, or manual), against the
    newest run's objectives; None when it has no run the viewer may see."""
    runs = list(DrillRun.objects.filter(run_scope or Q(), cluster_id=cluster_id)
                .select_related("plan").order_by("-slot_at", "-id")[: CHART_RUNS * 2])
    if not runs:
        return None
    newest = runs[0]
    return run_charts(runs, rto_objective=newest.rto_objective_seconds,
                      rpo_objective=newest.rpo_objective_seconds, chart_id="cluster",
                      label="plan")
