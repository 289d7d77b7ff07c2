"""The drill scheduler: one beat turns every plan's due slots into runs, starts the runs
that have room, and records the ones that cannot start in time as missed.

    1. plans     every enabled plan (one query); for each, the slots since its cursor
                 (`scheduled_through`) up to now (restores/schedules.py)
    2. runs      one run per slot and matching cluster (the clusters: one query), inserted
                 in one statement; a slot whose window had already closed when the beat
                 saw it (the beat or the worker was stopped) is inserted as missed
    3. start     queued runs, oldest slot first, while their cluster has no drill running
                 and their platform fewer than DR_DRILL_CONCURRENCY: each starts a drill
                 operation (services/drills.drill_request); a refusal (no backup, the
                 window moved) is the run's failure, in words
    4. expire    queued runs whose window closed: missed, saying why (the cluster was busy,
                 the platform full)
    5. seal      runs whose operation ended without sealing them (a cancelled drill)

The queries of a beat do not grow with the number of plans, clusters or runs, except for the
runs it starts (at most DR_DRILL_CONCURRENCY per platform). Missed runs are sealed together:
one audit entry carries each one's evidence hash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Q, When
from django.utils import timezone

from restores import schedules
from restores.models import Cluster, DrillPlan, DrillRun, Operation
from restores.models import auditlog as audit
from restores.models.drills import EVIDENCE_SEALED, evidence_digest, plans_covering, run_evidence
from restores.models.requests import repo_window
from restores.platforms.targets import RestoreTarget
from restores.services import drills
from restores.services.errors import ServiceError

log = logging.getLogger(__name__)

MISSED_WHILE_STOPPED = (
    "Not started: the scheduler did not run between the slot at {slot} and the end of its "
    "window at {end} (the beat or the worker was stopped)."
)
MISSED_SKIPPED = (
    "{count} earlier slot(s) of this plan passed while the scheduler was stopped; they are "
    "not listed one by one."
)
MISSED_BUSY = "Not started within its window (until {end}): {why}."
WHY_CLUSTER_BUSY = "another drill of {cluster} was running the whole time"
WHY_PLATFORM_FULL = (
    "the {platform} platform already ran {limit} drill(s) at once (DR_DRILL_CONCURRENCY)"
)
WHY_CLUSTER_GONE = "{cluster} is no longer reported by its platform"
NOT_STARTED = "The drill could not start: {reason}"
# How many queued runs one beat looks at (oldest slots first).
QUEUE_LIMIT = 500


@dataclasses.dataclass
class BeatResult:
    slots: int = 0
    runs_created: int = 0
    started: int = 0
    missed: int = 0
    failed_to_start: int = 0
    sealed_late: int = 0

    def __str__(self) -> str:
        return (f"{self.slots} slot(s), {self.runs_created} run(s) queued, {self.started} "
                f"started, {self.missed} missed, {self.failed_to_start} refused, "
                f"{self.sealed_late} sealed after their operation ended")


def beat(*, now: dt.datetime | None = None) -> BeatResult:
    now = now or timezone.now()
    result = BeatResult()
    window = dt.timedelta(seconds=settings.DR_DRILL_START_WINDOW)
    _queue_slots(now, window, result)
    _start_or_expire(now, result)
    _seal_finished(result)
    return result


def _seal_finished(result: BeatResult) -> None:
    """A run whose operation ended without its step sealing it (cancelled, or failed
    outside the drill's own steps): sealed now from the operation's end, in words."""
    from restores.models.drills import run_seal

    stranded = (DrillRun.objects.filter(outcome=DrillRun.Outcome.RUNNING,
                                        operation__status__in=Operation.TERMINAL)
                .select_related("operation", "plan", "cluster")[:QUEUE_LIMIT])
    for run in stranded:
        op = run.operation
        passed = op.status == Operation.Status.SUCCEEDED
        reason = "" if passed else (op.error_reason or f"The drill's operation was {op.status}.")
        if run_seal(run, outcome=DrillRun.Outcome.PASSED if passed else DrillRun.Outcome.FAILED,
                    reason=reason, op=op):
            result.sealed_late += 1


# --- 1 and 2: slots into runs -----------------------------------------------------------------


def _queue_slots(now: dt.datetime, window: dt.timedelta, result: BeatResult) -> None:
    plans = list(DrillPlan.objects.filter(enabled=True))
    due: list[tuple[DrillPlan, list[dt.datetime], int]] = []
    for plan in plans:
        after = plan.scheduled_through or plan.created_at
        slots, skipped = schedules.slots_between(plan.schedule, plan.time_zone, after, now)
        if slots:
            due.append((plan, slots, skipped))
    if not due:
        return
    platforms_due = {plan.platform for plan, _, _ in due}
    clusters = list(Cluster.objects.filter(platform__in=platforms_due, present=True,
                                           drill=False))
    covering = plans_covering([plan for plan, _, _ in due], clusters)
    by_plan: dict[int, list[Cluster]] = {}
    for cluster in clusters:
        for plan in covering[cluster.pk]:
            by_plan.setdefault(plan.pk, []).append(cluster)
    runs, missed = [], []
    for plan, slots, skipped in due:
        covered = by_plan.get(plan.pk, [])
        for i, slot in enumerate(slots):
            end = schedules.window_end(plan.schedule, plan.time_zone, slot, window)
            result.slots += 1
            for cluster in covered:
                run = DrillRun(plan=plan, cluster=cluster, slot_at=slot, start_by=end,
                               scenario=_scenario(plan),
                               rto_objective_seconds=plan.rto_objective_seconds,
                               rpo_objective_seconds=plan.rpo_objective_seconds)
                if end <= now:
                    run.outcome = DrillRun.Outcome.MISSED
                    run.reason = MISSED_WHILE_STOPPED.format(slot=_utc(slot), end=_utc(end))
                    if i == 0 and skipped:
                        run.reason += " " + MISSED_SKIPPED.format(count=skipped)
                    missed.append(run)
                runs.append(run)
    with transaction.atomic():
        created = DrillRun.objects.bulk_create(runs, ignore_conflicts=True)
        result.runs_created = len(created)
        cursor = Case(*[When(pk=plan.pk, then=slots[-1]) for plan, slots, _ in due])
        DrillPlan.objects.filter(pk__in=[p.pk for p, _, _ in due]).update(
            scheduled_through=cursor)
        # ignore_conflicts leaves no primary keys: read the missed ones back to seal them.
        if missed:
            keys = Q()
            for run in missed:
                keys |= Q(plan_id=run.plan_id, cluster_id=run.cluster_id, slot_at=run.slot_at)
            rows = list(DrillRun.objects.filter(keys, outcome=DrillRun.Outcome.MISSED,
                                                sealed_at__isnull=True)
                        .select_related("plan", "cluster"))
            _seal_missed(rows, now)
            result.missed += len(rows)


def _scenario(plan: DrillPlan) -> dict[str, Any]:
    return {"repo": plan.repo, "point_rule": plan.point_text, "checks": plan.checks,
            "policy": plan.policy}


def _utc(at: dt.datetime) -> str:
    return f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _seal_missed(rows: list[DrillRun], now: dt.datetime) -> None:
    """Seal missed runs together: one UPDATE, one audit entry with each run's hash."""
    if not rows:
        return
    hashes = []
    for run in rows:
        run.outcome, run.finished_at, run.sealed_at = DrillRun.Outcome.MISSED, now, now
        run.remediation_status = DrillRun.Remediation.OPEN
        run.remediation_owner_id = run.plan.owner_id if run.plan_id else None
        run.evidence = run_evidence(run, None)
        run.evidence_hash = evidence_digest(run.evidence)
        hashes.append({"run": run.pk, "evidence_sha256": run.evidence_hash})
    DrillRun.objects.bulk_update(rows, ["outcome", "reason", "finished_at", "sealed_at",
                                        "remediation_status", "remediation_owner",
                                        "evidence", "evidence_hash"], batch_size=1000)
    audit.audit_record(action=EVIDENCE_SEALED, actor_name=audit.SYSTEM,
                       params={"runs": hashes, "outcome": DrillRun.Outcome.MISSED},
                       result=f"{len(rows)} missed drill run(s)")


# --- 3 and 4: start what has room, expire the rest ---------------------------------------------


def _start_or_expire(now: dt.datetime, result: BeatResult) -> None:
    queued = list(DrillRun.objects.filter(outcome=DrillRun.Outcome.QUEUED)
                  .select_related("plan", "cluster").order_by("slot_at", "id")[:QUEUE_LIMIT])
    if not queued:
        return
    active = list(Operation.objects.filter(kind=Operation.Kind.DRILL,
                                           status__in=Operation.ACTIVE)
                  .values_list("cluster_id", "cluster__platform"))
    busy = {cluster_id for cluster_id, _ in active}
    running = Counter(platform for _, platform in active)
    limit = settings.DR_DRILL_CONCURRENCY
    expired: list[DrillRun] = []
    for run in queued:
        cluster = run.cluster
        if run.start_by is not None and run.start_by <= now:
            run.reason = MISSED_BUSY.format(end=_utc(run.start_by), why=(
                WHY_CLUSTER_GONE.format(cluster=cluster) if not cluster.present
                else WHY_CLUSTER_BUSY.format(cluster=cluster) if cluster.pk in busy
                else WHY_PLATFORM_FULL.format(platform=cluster.platform, limit=limit)))
            expired.append(run)
            continue
        if cluster.pk in busy or running[cluster.platform] >= limit or not cluster.present:
            continue
        if _start(run):
            result.started += 1
            busy.add(cluster.pk)
            running[cluster.platform] += 1
        else:
            result.failed_to_start += 1
    if expired:
        with transaction.atomic():
            _seal_missed(expired, now)
        result.missed += len(expired)


def _start(run: DrillRun) -> bool:
    """Start the run's drill; False (the run failed, sealed, saying why) when refused."""
    plan, cluster = run.plan, run.cluster
    try:
        point = _point(plan, cluster)
        drills.drill_request(cluster=cluster, repo_name=plan.repo, point=point, user=None,
                             run=run)
        return True
    except ServiceError as exc:
        reason = NOT_STARTED.format(reason=exc.message)
    from restores.models.drills import run_seal

    run_seal(run, outcome=DrillRun.Outcome.FAILED, reason=reason)
    log.warning("drill plan %s on %s: %s", plan.name, cluster, reason)
    return False


def _point(plan: DrillPlan, cluster: Cluster) -> RestoreTarget:
    """The point the plan asks for, on the cluster's repo as the inventory last read it."""
    if plan.point == DrillPlan.Point.LATEST:
        return RestoreTarget("latest")
    now = timezone.now()
    if plan.point == DrillPlan.Point.OFFSET:
        return RestoreTarget("time", time=now - dt.timedelta(seconds=plan.offset_seconds or 0))
    repo = cluster.repositories.filter(name=plan.repo).first()
    window = repo_window(repo) if repo else None
    if window is None or window.earliest is None or window.latest is None:
        raise ServiceError(drills.DRILL_REPO_EMPTY.format(cluster=cluster.name, repo=plan.repo))
    # A random instant inside the window, away from its very edges (a restore to the first
    # second of the oldest backup is refused by pgBackRest as before its end).
    span = (window.latest - window.earliest).total_seconds()
    margin = min(60.0, span / 10)
    offset = random.uniform(margin, max(margin, span - margin))  # noqa: S311 - not a secret
    return RestoreTarget("time", time=window.earliest + dt.timedelta(seconds=offset))
