"""Each cluster's drill status, as the Fleet page shows it: its last passing drill, and
whether it is passing, overdue (a plan covers it and no drill passed within that plan's
period), failing (its newest finished run failed or was missed) or never drilled.

Three queries for any number of clusters: the enabled plans, each cluster's newest finished
run and each one's newest pass (windows over the runs' cluster index).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from restores import schedules
from restores.models import Cluster, DrillPlan, DrillRun
from restores.models.drills import plans_covering

PASSING, OVERDUE, FAILING, NEVER = "passing", "overdue", "failing", "never drilled"


@dataclasses.dataclass(frozen=True)
class DrillStatus:
    state: str  # PASSING, OVERDUE, FAILING or NEVER
    words: str  # why, for the page
    last_pass_at: dt.datetime | None = None
    last_run_id: int | None = None


def _newest(runs: object, cluster_ids: list[int]) -> dict[int, tuple]:
    ranked = (runs.filter(cluster_id__in=cluster_ids)  # type: ignore[attr-defined]
              .annotate(rank=Window(RowNumber(), partition_by=F("cluster_id"),
                                    order_by=[F("slot_at").desc(), F("id").desc()]))
              .filter(rank=1).values_list("cluster_id", "id", "outcome", "slot_at", "reason"))
    return {row[0]: row[1:] for row in ranked}


def drill_statuses(clusters: Sequence[Cluster], *,
                   now: dt.datetime | None = None) -> dict[int, DrillStatus]:
    now = now or timezone.now()
    ids = [c.pk for c in clusters]
    if not ids:
        return {}
    plans = list(DrillPlan.objects.filter(enabled=True))
    last = _newest(DrillRun.objects.filter(outcome__in=DrillRun.DONE), ids)
    passed = _newest(DrillRun.objects.filter(outcome=DrillRun.Outcome.PASSED), ids)
    grace = dt.timedelta(seconds=settings.DR_DRILL_START_WINDOW)
    periods = schedules.Periods(now)
    statuses = {}
    covers = plans_covering(plans, clusters)
    for cluster in clusters:
        covering = covers[cluster.pk]
        known = [d for d in (periods.of(p.schedule, p.time_zone) for p in covering) if d]
        period = min(known, default=None)
        newest, ok = last.get(cluster.pk), passed.get(cluster.pk)
        pass_at = ok[2] if ok else None
        if newest is not None and newest[1] in DrillRun.DEFICIENT:
            statuses[cluster.pk] = DrillStatus(FAILING, f"last drill {newest[1]}: {newest[3]}",
                                               pass_at, newest[0])
        elif period is not None and (pass_at is None or now - pass_at > period + grace) and (
                pass_at is not None or newest is not None
                or any(now - p.created_at > period + grace for p in covering)):
            statuses[cluster.pk] = DrillStatus(
                OVERDUE, f"no drill passed within its plan's period ({period})", pass_at,
                newest[0] if newest else None)
        elif pass_at is not None:
            statuses[cluster.pk] = DrillStatus(PASSING, "last drill passed", pass_at,
                                               ok[0] if ok else None)
        else:
            statuses[cluster.pk] = DrillStatus(
                NEVER, "no plan covers it" if not covering else "no drill has run yet")
    return statuses
