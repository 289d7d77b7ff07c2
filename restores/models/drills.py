"""Drill plans, their runs, and the signed-off audit reports.

A `DrillPlan` says which clusters to drill (one cluster, a namespace, or every cluster whose
name and labels match), from which repo, to which point, with which checks and objectives,
on which schedule (cron in a time zone), for which policy. The beat turns each due slot into
one `DrillRun` per matching cluster (services/drill_schedule.py); a run starts a drill
operation when its cluster and its platform have room, or is recorded as missed once its
slot has passed. Manual drills have a run too, without a plan.

A run's evidence is written once (`run_seal`): the drill's result, checks and verdict, with
a SHA-256 of it that also enters the audit chain, so `manage.py audit_verify` names a run
whose stored result was changed afterwards (`evidence_verify`). Deficiencies (failed or
missed runs) carry an owner, a remediation note and a status: those change, audited.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from restores.models.inventory import Cluster
from restores.models.operations import Operation


class DrillPlan(models.Model):
    class Scope(models.TextChoices):
        CLUSTER = "cluster", "one cluster"
        NAMESPACE = "namespace", "every cluster of a namespace"
        MATCH = "match", "every cluster matching a name pattern and labels"

    class Point(models.TextChoices):
        LATEST = "latest", "latest"
        RANDOM = "random", "a random point inside the recoverable window"
        OFFSET = "offset", "a fixed time ago"

    name = models.CharField(max_length=100, unique=True)
    platform = models.CharField(max_length=32)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.CLUSTER)
    # cluster: its namespace and name; namespace: the namespace; match: "" = every namespace.
    namespace = models.CharField(max_length=253, blank=True)
    cluster_name = models.CharField(max_length=63, blank=True)
    name_pattern = models.CharField(max_length=100, blank=True)  # match: a shell glob
    labels = models.JSONField(default=dict, blank=True)  # match: every one must be equal
    repo = models.CharField(max_length=16, default="repo1")
    point = models.CharField(max_length=16, choices=Point.choices, default=Point.LATEST)
    offset_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Each check: {"kind": "sql" | "not_empty" | "newest_row" | "amcheck" | "reconcile", ...}
    # (restores/rules_checks.py validates them; steps/drill_checks.py runs them).
    checks = models.JSONField(default=list, blank=True)
    rto_objective_seconds = models.PositiveIntegerField(null=True, blank=True)
    rpo_objective_seconds = models.PositiveIntegerField(null=True, blank=True)
    schedule = models.CharField(max_length=120)  # cron: minute hour day month weekday
    time_zone = models.CharField(max_length=64, default="UTC")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    policy = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    # Every slot up to here has been turned into runs (or missed runs): the beat's cursor.
    scheduled_through = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["enabled"], name="drillplan_enabled")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("restores:drill_plan", kwargs={"plan_id": self.pk})

    def covers(self, cluster: Cluster) -> bool:
        """Whether the plan drills `cluster` (never a scratch copy, never one gone)."""
        return plan_covers(self, cluster)

    @property
    def target_text(self) -> str:
        if self.scope == self.Scope.CLUSTER:
            return f"{self.platform}/{self.namespace}/{self.cluster_name}"
        where = f"{self.platform}/{self.namespace or '*'}"
        if self.scope == self.Scope.NAMESPACE:
            return f"every cluster of {where}"
        labels = ", ".join(f"{k}={v}" for k, v in sorted((self.labels or {}).items()))
        return (f"clusters of {where} named {self.name_pattern or '*'}"
                + (f" labelled {labels}" if labels else ""))

    @property
    def point_text(self) -> str:
        if self.point == self.Point.OFFSET and self.offset_seconds:
            hours = self.offset_seconds / 3600
            return f"{hours:g} hours ago" if hours >= 1 else f"{self.offset_seconds} s ago"
        return _label(self.Point, self.point)


def plan_covers(plan: Any, cluster: Any) -> bool:
    """Whether `plan` drills `cluster`: a DrillPlan and a Cluster, or anything with their
    fields' names (the report reads a fleet's plans and clusters as light rows)."""
    if cluster.drill or not cluster.present or cluster.platform != plan.platform:
        return False
    if plan.scope == DrillPlan.Scope.CLUSTER:
        return bool((cluster.namespace, cluster.name) == (plan.namespace, plan.cluster_name))
    if plan.namespace and cluster.namespace != plan.namespace:
        return False
    if plan.scope == DrillPlan.Scope.NAMESPACE:
        return True
    labels = cluster.labels or {}
    return fnmatch.fnmatchcase(cluster.name, plan.name_pattern or "*") and all(
        labels.get(k) == v for k, v in (plan.labels or {}).items())


def plans_covering(plans: Iterable[Any], clusters: Iterable[Any]) -> dict[int, list[Any]]:
    """Each cluster's pk with the plans among `plans` that cover it, as DrillPlan.covers says,
    without asking every plan about every cluster: plans of one cluster or one namespace are
    looked up by name; only pattern plans are asked."""
    exact: dict[tuple[str, str, str], list[Any]] = {}
    by_namespace: dict[tuple[str, str], list[Any]] = {}
    patterns: list[Any] = []
    for plan in plans:
        if plan.scope == DrillPlan.Scope.CLUSTER:
            exact.setdefault((plan.platform, plan.namespace, plan.cluster_name), []).append(plan)
        elif plan.scope == DrillPlan.Scope.NAMESPACE:
            by_namespace.setdefault((plan.platform, plan.namespace), []).append(plan)
        else:
            patterns.append(plan)
    found = {}
    for cluster in clusters:
        if cluster.drill or not cluster.present:
            found[cluster.pk] = []
            continue
        found[cluster.pk] = [
            *exact.get((cluster.platform, cluster.namespace, cluster.name), ()),
            *by_namespace.get((cluster.platform, cluster.namespace), ()),
            *(p for p in patterns if plan_covers(p, cluster))]
    return found


class DrillRun(models.Model):
    class Outcome(models.TextChoices):
        QUEUED = "queued", "queued"  # its slot came; waiting for room on its cluster
        RUNNING = "running", "running"
        PASSED = "passed", "passed"
        FAILED = "failed", "failed"
        MISSED = "missed", "missed"  # could not start within its slot

    class Remediation(models.TextChoices):
        OPEN = "open", "open"
        IN_PROGRESS = "in_progress", "in progress"
        RESOLVED = "resolved", "resolved"
        ACCEPTED = "accepted", "risk accepted"

    DONE = (Outcome.PASSED, Outcome.FAILED, Outcome.MISSED)
    DEFICIENT = (Outcome.FAILED, Outcome.MISSED)

    plan = models.ForeignKey(DrillPlan, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="runs")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="drill_runs")
    # The schedule's time for this run (a manual drill: when it was asked for), and the
    # latest it may start: past it, a queued run is missed.
    slot_at = models.DateTimeField()
    start_by = models.DateTimeField(null=True, blank=True)
    operation = models.OneToOneField(Operation, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="drill_run")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.QUEUED)
    reason = models.TextField(blank=True)  # in words: which check or objective failed, why
    # What the plan asked for when the run started (a later edit does not rewrite history).
    scenario = models.JSONField(default=dict, blank=True)
    rto_seconds = models.FloatField(null=True, blank=True)
    rpo_seconds = models.FloatField(null=True, blank=True)
    rto_objective_seconds = models.PositiveIntegerField(null=True, blank=True)
    rpo_objective_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Written once by run_seal; its hash is also in the audit chain.
    evidence = models.JSONField(null=True, blank=True)
    evidence_hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    # A deficiency's follow-up (failed and missed runs).
    remediation_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.SET_NULL, related_name="+")
    remediation_note = models.TextField(blank=True)
    remediation_status = models.CharField(max_length=16, choices=Remediation.choices,
                                          blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-slot_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "cluster", "slot_at"],
                                    condition=Q(plan__isnull=False), name="drillrun_one_per_slot"),
        ]
        indexes = [
            models.Index(fields=["cluster", "-slot_at"], name="drillrun_cluster_recent"),
            models.Index(fields=["plan", "-slot_at"], name="drillrun_plan_recent"),
            # A report's period: its runs counted, paged and hashed from the index alone
            # (what the counts and the deficiency filter read is in it).
            models.Index(fields=["slot_at", "id"], name="drillrun_period",
                         include=["plan", "cluster", "outcome", "rto_seconds",
                                  "rto_objective_seconds", "rpo_seconds",
                                  "rpo_objective_seconds"]),
            # Each cluster's last pass: one probe per cluster.
            models.Index(fields=["cluster", "-slot_at"], condition=Q(outcome="passed"),
                         name="drillrun_cluster_passes"),
            models.Index(fields=["start_by"], condition=Q(outcome="queued"),
                         name="drillrun_queued"),
        ]

    def __str__(self) -> str:
        return f"drill of {self.cluster} at {self.slot_at:%Y-%m-%d %H:%M} ({self.outcome})"

    def get_absolute_url(self) -> str:
        return reverse("restores:drill_run", kwargs={"run_id": self.pk})

    @property
    def deficient(self) -> bool:
        return self.outcome in self.DEFICIENT

    # What get_outcome_display and get_remediation_status_display say, read from the enum
    # (Django's versions walk the choices on every call: a report shows hundreds).
    @property
    def outcome_label(self) -> str:
        return _label(self.Outcome, self.outcome)

    @property
    def remediation_label(self) -> str:
        return _label(self.Remediation, self.remediation_status)


_LABELS: dict[type[models.TextChoices], dict[str, str]] = {}


def _label(choices: type[models.TextChoices], value: str) -> str:
    labels = _LABELS.get(choices)
    if labels is None:
        labels = _LABELS[choices] = {k: str(v) for k, v in choices.choices}
    return labels.get(value, value)


class ReportSignoff(models.Model):
    """An audit report of a period, prepared by one user and signed by an admin other than
    its author. `digest` covers what the report showed when it was prepared (every run's
    evidence hash among it), so the signature is of those facts."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    time_zone = models.CharField(max_length=64, default="UTC")
    # The clusters it covers, as the report's filter says them ("" = every one in scope).
    platform = models.CharField(max_length=32, blank=True)
    namespace = models.CharField(max_length=253, blank=True)
    summary = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    prepared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
    prepared_at = models.DateTimeField(default=timezone.now)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-prepared_at"]
        indexes = [models.Index(fields=["period_start", "period_end"], name="signoff_period")]

    def __str__(self) -> str:
        return f"report {self.period_start:%Y-%m-%d} to {self.period_end:%Y-%m-%d}"


# --- evidence ----------------------------------------------------------------------------------


def evidence_digest(evidence: dict[str, Any]) -> str:
    text = json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_evidence(run: DrillRun, op: Operation | None) -> dict[str, Any]:
    """Everything the run proved or failed to, as it will be kept: the scenario, the
    operation's result (checks, figures, commands), the verdict."""
    return json.loads(json.dumps({
        "run": run.pk,
        "plan": run.plan.name if run.plan_id else None,
        "cluster": f"{run.cluster.platform}/{run.cluster.namespace}/{run.cluster.name}",
        "slot_at": run.slot_at.isoformat(),
        "outcome": run.outcome,
        "reason": run.reason,
        "scenario": run.scenario,
        "objectives": {"rto_seconds": run.rto_objective_seconds,
                       "rpo_seconds": run.rpo_objective_seconds},
        "measured": {"rto_seconds": run.rto_seconds, "rpo_seconds": run.rpo_seconds},
        "operation": str(op.pk) if op else None,
        "status": op.status if op else None,
        "result": op.result if op else {},
        "requested_by": (op.requested_by.get_username() if op and op.requested_by
                         else "schedule" if run.plan_id else "system"),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }, default=str))


EVIDENCE_SEALED = "drill.evidence_sealed"  # auditlog.DRILL_EVIDENCE_SEALED


def run_seal(run: DrillRun, *, outcome: str, reason: str = "",
             op: Operation | None = None) -> bool:
    """Write the run's outcome and evidence once, and its hash into the audit chain. False
    when it was sealed already (a second worker, a retried step): nothing changes then."""
    from django.db import transaction

    from restores.models import auditlog

    now = timezone.now()
    with transaction.atomic():
        locked = DrillRun.objects.select_for_update(of=("self",)).select_related(
            "plan", "cluster").get(pk=run.pk)
        if locked.sealed_at is not None:
            return False
        result = (op.result if op else {}) or {}
        locked.outcome, locked.reason, locked.finished_at = outcome, reason, now
        locked.rto_seconds = result.get("rto_seconds")
        locked.rpo_seconds = result.get("rpo_seconds")
        if outcome in DrillRun.DEFICIENT and not locked.remediation_status:
            locked.remediation_status = DrillRun.Remediation.OPEN
            locked.remediation_owner_id = locked.plan.owner_id if locked.plan_id else (
                op.requested_by_id if op else None)
        locked.evidence = run_evidence(locked, op)
        locked.evidence_hash = evidence_digest(locked.evidence)
        locked.sealed_at = now
        locked.save()
        auditlog.audit_record(
            action=EVIDENCE_SEALED, actor_name=auditlog.SYSTEM, cluster=locked.cluster,
            operation=op, params={"run": locked.pk, "outcome": outcome,
                                  "evidence_sha256": locked.evidence_hash,
                                  "plan": locked.plan.name if locked.plan_id else None},
            result=reason or outcome)
    run.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return True


EVIDENCE_CHANGED = (
    "drill run #{run} ({cluster}, {slot}): its stored evidence no longer matches the hash "
    "sealed into the audit chain (entry #{entry}): the run's result was changed afterwards."
)
EVIDENCE_UNSEALED = (
    "drill run #{run} ({cluster}, {slot}) is finished but its seal is not in the audit chain: "
    "its evidence was written outside the console."
)


def evidence_verify(*, chunk_size: int = 2000) -> list[str]:
    """Each sealed run whose evidence (or the operation result it was sealed from) no
    longer matches the hash the audit chain holds for it, in words; [] when all match."""
    from restores.models.audit import AuditEntry

    sealed: dict[int, tuple[int, str | None]] = {}
    for entry_id, params in (AuditEntry.objects.filter(action=EVIDENCE_SEALED)
                             .values_list("id", "params").iterator(chunk_size=chunk_size)):
        # One run per entry, or a batch (missed runs are sealed together).
        for item in params.get("runs") or [params]:
            sealed[int(item["run"])] = (entry_id, item.get("evidence_sha256"))
    problems = []
    runs = (DrillRun.objects.filter(sealed_at__isnull=False)
            .select_related("cluster", "operation").order_by("id"))
    for run in runs.iterator(chunk_size=chunk_size):
        where = {"run": run.pk, "cluster": str(run.cluster),
                 "slot": run.slot_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
        entry = sealed.get(run.pk)
        if entry is None:
            problems.append(EVIDENCE_UNSEALED.format(**where))
            continue
        evidence = run.evidence or {}
        changed = (evidence_digest(evidence) != entry[1]
                   or run.evidence_hash != entry[1]
                   or (run.operation is not None
                       and evidence.get("result") != run.operation.result)
                   or evidence.get("measured") != {"rto_seconds": run.rto_seconds,
                                                   "rpo_seconds": run.rpo_seconds}
                   or evidence.get("outcome") != run.outcome)
        if changed:
            problems.append(EVIDENCE_CHANGED.format(**where, entry=entry[0]))
    return problems
