"""The Drills page's plans: each plan with its last runs and its RTO / RPO charts, failing
and overdue ones first; and one cluster's chart when the page is filtered by it.

Three queries whatever the number of plans, clusters or runs (the plans; their last runs by
a window over the runs' plan index; each plan's last pass), one more for a cluster's chart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from restores import schedules
from restores.charts import ObjectiveCharts, run_charts
from restores.models import DrillPlan, DrillRun

CHART_RUNS = 20  # the runs a plan's chart draws, newest


@dataclasses.dataclass(frozen=True)
class PlanStatus:
    plan: DrillPlan
    runs: list[DrillRun]  # newest first, at most CHART_RUNS
    last_pass: dt.datetime | None
    period: dt.timedelta | None
    overdue: bool  # enabled, and no pass within its period (once one period has passed)
    charts: ObjectiveCharts

    @property
    def last(self) -> DrillRun | None:
        """The newest finished run."""
        return next((r for r in self.runs if r.outcome in DrillRun.DONE), None)

    @property
    def failing(self) -> bool:
        last = self.last
        return last is not None and last.deficient


def _period(plan: DrillPlan, now: dt.datetime) -> dt.timedelta | None:
    try:
        return schedules.period(plan.schedule, plan.time_zone, now)
    except (schedules.ScheduleError, ValueError, KeyError):
        return None


def plan_statuses(*, run_scope: Q | None = None, plan_scope: Q | None = None,
                  now: dt.datetime | None = None) -> list[PlanStatus]:
    """The plans the viewer may see (`plan_scope`: a cluster filter without prefix, applied
    to the plan's platform and namespace; or a run on a cluster `run_scope`, prefix
    "cluster__", lets them see), failing first, then overdue, then by name. Runs shown are
    only those of clusters in `run_scope`."""
    now = now or timezone.now()
    run_scope = run_scope or Q()
    plan_scope = plan_scope or Q()
    if plan_scope.children:  # (Q() | x is x: an empty scope, every plan, needs no OR)
        visible = DrillRun.objects.filter(run_scope, plan__isnull=False).values("plan_id")
        plan_scope = plan_scope | Q(pk__in=visible)
    plans = list(DrillPlan.objects.filter(plan_scope).select_related("owner").order_by("name"))
    if not plans:
        return []
    ids = [p.pk for p in plans]
    ranked = Window(RowNumber(), partition_by=F("plan_id"),
                    order_by=[F("slot_at").desc(), F("id").desc()])
    runs: dict[int, list[DrillRun]] = {}
    for run in (DrillRun.objects.filter(run_scope, plan_id__in=ids).annotate(rank=ranked)
                .filter(rank__lte=CHART_RUNS).select_related("cluster")
                .order_by("plan_id", "-slot_at", "-id")):
        runs.setdefault(run.plan_id, []).append(run)  # type: ignore[arg-type]
    passes = dict(DrillRun.objects.filter(run_scope, plan_id__in=ids,
                                          outcome=DrillRun.Outcome.PASSED)
                  .annotate(rank=ranked).filter(rank=1).values_list("plan_id", "slot_at"))
    statuses = []
    for plan in plans:
        period = _period(plan, now)
        last_pass = passes.get(plan.pk)
        overdue = bool(plan.enabled and period is not None
                       and plan.created_at < now - period
                       and (last_pass is None or last_pass < now - period))
        mine = runs.get(plan.pk, [])
        statuses.append(PlanStatus(plan, mine, last_pass, period, overdue, run_charts(
            mine, rto_objective=plan.rto_objective_seconds,
            rpo_objective=plan.rpo_objective_seconds, chart_id=f"plan-{plan.pk}")))
    statuses.sort(key=lambda s: (not s.failing, not s.overdue, s.plan.name))
    return statuses


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
