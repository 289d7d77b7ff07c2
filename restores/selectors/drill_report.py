"""The audit report of a period and a set of clusters: what DORA Art. 11-12, SOC 2 A1.3 and
ISO 27001 A.8.13 ask a restore test's record to show (docs: /work/shared/EVIDENCE.md).

    ReportFilter   the period (whole days in a time zone), the zone, platform / namespace;
                   read from a URL's GET, a bad value is a ReportParamError in words
    report_facts   the plans in scope and their policies, coverage, every run of the period
                   (scenario, isolated target, checks, planned vs measured RTO / RPO),
                   deficiencies, the recovery operations, the sign-offs of that exact period
                   and scope; and the summary whose SHA-256 a sign-off keeps

A fixed number of queries (seven), whatever the fleet or the number of runs; the viewer's
scope (`scope`, a cluster filter) bounds every one of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from restores import schedules
from restores.charts import duration_text
from restores.models import Cluster, DrillPlan, DrillRun, Operation, ReportSignoff
from restores.models.drills import evidence_digest
from restores.parsing import filter_text

DEFAULT_DAYS = 30
MAX_DAYS = 1100  # three years: a yearly test, with the two years before it
BAD_DATE = "“{field}” must be a day written YYYY-MM-DD (e.g. 2026-11-01), not “{value}”."
BAD_ORDER = "The period ends ({last}) before it starts ({first}): swap “from” and “to”."
TOO_LONG = "A report covers at most {days} days; this period has {have}. Shorten it."
OUT_OF_RANGE = "“{field}” must be a day between {low} and {high}, not {value}."
# The days a report may name (far enough from the calendar's ends for any zone's offset).
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(2999, 12, 31)
RECOVERY_KINDS = (Operation.Kind.CLONE, Operation.Kind.RESTORE_IN_PLACE,
                  Operation.Kind.RESTORE_DATABASE, Operation.Kind.PROMOTE,
                  Operation.Kind.SHUTDOWN, Operation.Kind.START)
NO_PLAN = "no plan covers it"
NEVER_PASSED = "no drill has passed"
LAST_PASSED_LONG_AGO = "its last pass is older than its plan's period ({period})"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ReportParamError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _day(data: Any, field: str, default: dt.date) -> dt.date:
    text = filter_text(data.get(field), max_length=40)
    if not text:
        return default
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ReportParamError(BAD_DATE.format(field=field, value=text)) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportParamError(OUT_OF_RANGE.format(field=field, low=FIRST_DAY, high=LAST_DAY,
                                                   value=day))
    return day


@dataclasses.dataclass(frozen=True)
class ReportFilter:
    """Whole days `first`..`last` (both included) in the zone `tz`; the clusters of
    `platform` / `namespace` ("" = every one the viewer may see)."""

    first: dt.date
    last: dt.date
    tz: str = "UTC"
    platform: str = ""
    namespace: str = ""

    @classmethod
    def from_query(cls, data: Any, *, now: dt.datetime | None = None) -> ReportFilter:
        """From a request's GET (or a POST of the same fields); ReportParamError in words."""
        tz = filter_text(data.get("tz"), max_length=64) or "UTC"
        try:
            zone = schedules.zone(tz)
        except schedules.ScheduleError as exc:
            raise ReportParamError(str(exc)) from None
        today = (now or timezone.now()).astimezone(zone).date()
        last = _day(data, "to", today)
        first = _day(data, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
        if last < first:
            raise ReportParamError(BAD_ORDER.format(first=first, last=last))
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise ReportParamError(TOO_LONG.format(days=MAX_DAYS, have=days))
        return cls(first, last, tz, filter_text(data.get("platform"), max_length=32),
                   filter_text(data.get("namespace"), max_length=253))

    @property
    def start(self) -> dt.datetime:
        zone = schedules.zone(self.tz)
        return dt.datetime.combine(self.first, dt.time(), zone).astimezone(dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The instant after the period (midnight after `last`, in the zone)."""
        zone = schedules.zone(self.tz)
        nxt = self.last + dt.timedelta(days=1)
        return dt.datetime.combine(nxt, dt.time(), zone).astimezone(dt.UTC)

    @property
    def scope_text(self) -> str:
        if not self.platform and not self.namespace:
            return "every cluster"
        return f"{self.platform or '*'}/{self.namespace or '*'}"

    def params(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "tz": self.tz,
                "platform": self.platform, "namespace": self.namespace}

    def query(self) -> str:
        return urlencode(self.params())

    def clusters(self, prefix: str = "") -> Q:
        q = Q(**{f"{prefix}platform": self.platform}) if self.platform else Q()
        return q & Q(**{f"{prefix}namespace": self.namespace}) if self.namespace else q


@dataclasses.dataclass(frozen=True)
class RunRow:
    """A run as the report shows it."""

    run: DrillRun
    checks: list[dict[str, Any]]
    rto_met: bool | None  # None: no objective, or nothing measured
    rpo_met: bool | None

    @property
    def failed_checks(self) -> list[str]:
        return [str(c.get("check", "")) for c in self.checks if not c.get("ok")]

    @property
    def target(self) -> str:
        """The isolated copy it restored into (never the source)."""
        return str((self.run.scenario or {}).get("scratch") or "")

    @property
    def deficient(self) -> bool:
        return self.run.deficient or self.rto_met is False or self.rpo_met is False


@dataclasses.dataclass(frozen=True)
class PlanRow:
    plan: DrillPlan
    period: dt.timedelta | None
    clusters: int  # of those in scope
    runs: int  # in the period
    passed: int


@dataclasses.dataclass(frozen=True)
class Coverage:
    cluster: Cluster
    plans: list[str]
    last_pass: dt.datetime | None
    covered: bool
    why: str  # in words, when not covered


@dataclasses.dataclass(frozen=True)
class ReportFacts:
    selection: ReportFilter
    generated_at: dt.datetime
    plans: list[PlanRow]
    coverage: list[Coverage]
    runs: list[RunRow]
    operations: list[Operation]
    signoffs: list[ReportSignoff]
    summary: dict[str, Any]
    digest: str

    @property
    def covered(self) -> int:
        return sum(1 for c in self.coverage if c.covered)

    @property
    def deficiencies(self) -> list[RunRow]:
        return [r for r in self.runs if r.deficient]

    @property
    def signoff(self) -> ReportSignoff | None:
        """The newest sign-off of this exact period and scope."""
        return self.signoffs[0] if self.signoffs else None


def _met(measured: float | None, objective: int | None) -> bool | None:
    if measured is None or objective is None:
        return None
    return measured <= objective


def _run_row(run: DrillRun) -> RunRow:
    result = (run.evidence or {}).get("result") or {}
    if not result and run.operation is not None:
        result = run.operation.result or {}  # not sealed yet: what the drill has so far
    checks = [c for c in result.get("checks") or [] if isinstance(c, dict)]
    return RunRow(run, checks, _met(run.rto_seconds, run.rto_objective_seconds),
                  _met(run.rpo_seconds, run.rpo_objective_seconds))


def _period(plan: DrillPlan, at: dt.datetime) -> dt.timedelta | None:
    try:
        return schedules.period(plan.schedule, plan.time_zone, at)
    except (schedules.ScheduleError, ValueError, KeyError):
        return None


def report_facts(selection: ReportFilter, *, scope: Q | None = None,
                 now: dt.datetime | None = None) -> ReportFacts:
    """Everything the report shows for `selection`, of the clusters `scope` (a cluster
    filter without prefix) lets the viewer see."""
    now = now or timezone.now()
    start, end = selection.start, selection.end
    at = min(end, now)  # coverage is judged at the period's end, or now if it is not over
    scope = scope or Q()
    clusters = list(Cluster.objects.filter(scope, selection.clusters(), drill=False,
                                           present=True).order_by("platform", "namespace",
                                                                  "name"))
    runs = [_run_row(r) for r in DrillRun.objects.filter(
        _prefixed(scope), selection.clusters("cluster__"), slot_at__gte=start, slot_at__lt=end,
    ).select_related("plan", "cluster", "operation", "remediation_owner",
                     "operation__requested_by", "operation__approved_by")
        .order_by("slot_at", "id")]
    plans = [p for p in DrillPlan.objects.filter(
        *([Q(platform=selection.platform)] if selection.platform else [])).select_related("owner")]
    passes = dict(DrillRun.objects.filter(
        _prefixed(scope), selection.clusters("cluster__"), outcome=DrillRun.Outcome.PASSED,
        slot_at__lt=end,
    ).annotate(rank=Window(RowNumber(), partition_by=F("cluster_id"),
                           order_by=[F("slot_at").desc(), F("id").desc()]))
        .filter(rank=1).values_list("cluster_id", "slot_at"))
    periods = {p.pk: _period(p, at) for p in plans}
    coverage = [_coverage(c, [p for p in plans if p.enabled and p.covers(c)], periods,
                          passes.get(c.pk), at) for c in clusters]
    plan_rows = _plan_rows(plans, periods, clusters, runs)
    operations = list(Operation.objects.filter(
        _prefixed(scope), selection.clusters("cluster__"), kind__in=RECOVERY_KINDS,
        created_at__gte=start, created_at__lt=end,
    ).select_related("cluster", "requested_by", "approved_by").order_by("created_at", "id"))
    signoffs = list(ReportSignoff.objects.filter(
        period_start=start, period_end=end, platform=selection.platform,
        namespace=selection.namespace).select_related("prepared_by", "signed_by")
        .order_by("-prepared_at", "-id"))
    summary = report_summary(selection, plan_rows, coverage, runs, operations)
    return ReportFacts(selection, now, plan_rows, coverage, runs, operations, signoffs,
                       summary, evidence_digest(summary))


def _prefixed(scope: Q) -> Q:
    """The cluster filter `scope` (no prefix) as a filter of rows with a `cluster`."""
    if not scope.children:
        return Q()
    return Q(cluster__in=Cluster.objects.filter(scope))


def _coverage(cluster: Cluster, plans: list[DrillPlan], periods: dict[int, dt.timedelta | None],
              last_pass: dt.datetime | None, at: dt.datetime) -> Coverage:
    names = [p.name for p in plans]
    if not plans:
        return Coverage(cluster, names, last_pass, False, NO_PLAN)
    if last_pass is None:
        return Coverage(cluster, names, last_pass, False, NEVER_PASSED)
    known = [d for d in (periods[p.pk] for p in plans) if d is not None]
    period = min(known) if known else None
    if period is not None and last_pass < at - period:
        return Coverage(cluster, names, last_pass, False,
                        LAST_PASSED_LONG_AGO.format(period=duration_text(period.total_seconds())))
    return Coverage(cluster, names, last_pass, True, "")


def _plan_rows(plans: list[DrillPlan], periods: dict[int, dt.timedelta | None],
               clusters: list[Cluster], runs: list[RunRow]) -> list[PlanRow]:
    """The plans in scope: those covering a cluster in scope, or with a run in the period."""
    by_plan: dict[int, list[RunRow]] = {}
    for r in runs:
        if r.run.plan_id is not None:
            by_plan.setdefault(r.run.plan_id, []).append(r)
    rows = []
    for plan in plans:
        covered = sum(1 for c in clusters if plan.covers(c))
        mine = by_plan.get(plan.pk, [])
        if covered or mine:
            rows.append(PlanRow(plan, periods[plan.pk], covered, len(mine),
                                sum(1 for r in mine if r.run.outcome == DrillRun.Outcome.PASSED)))
    return rows


def _where(cluster: Cluster) -> str:
    return f"{cluster.platform}/{cluster.namespace}/{cluster.name}"


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def report_summary(selection: ReportFilter, plans: list[PlanRow], coverage: list[Coverage],
                   runs: list[RunRow], operations: list[Operation]) -> dict[str, Any]:
    """The facts a sign-off is of, as plain JSON (its SHA-256 is the sign-off's digest):
    every run with its evidence hash, the deficiencies with their follow-up, coverage, the
    recovery operations."""
    outcomes: dict[str, int] = {}
    for r in runs:
        outcomes[r.run.outcome] = outcomes.get(r.run.outcome, 0) + 1
    return {
        "period": {"from": selection.first.isoformat(), "to": selection.last.isoformat(),
                   "time_zone": selection.tz, "start": selection.start.isoformat(),
                   "end": selection.end.isoformat()},
        "scope": {"platform": selection.platform, "namespace": selection.namespace},
        "plans": [{"plan": p.plan.name, "policy": p.plan.policy} for p in plans],
        "coverage": {"covered": sum(1 for c in coverage if c.covered),
                     "clusters": len(coverage),
                     "not_covered": [_where(c.cluster) for c in coverage if not c.covered]},
        "outcomes": dict(sorted(outcomes.items())),
        "runs": [{"run": r.run.pk, "cluster": _where(r.run.cluster), "outcome": r.run.outcome,
                  "slot_at": r.run.slot_at.isoformat(),
                  "evidence_sha256": r.run.evidence_hash or None,
                  "rto_seconds": r.run.rto_seconds, "rpo_seconds": r.run.rpo_seconds}
                 for r in runs],
        "deficiencies": [{"run": r.run.pk, "status": r.run.remediation_status,
                          "owner": _user(r.run.remediation_owner),
                          "note": r.run.remediation_note} for r in runs if r.deficient],
        "operations": [{"operation": str(op.pk), "kind": op.kind, "status": op.status,
                        "cluster": _where(op.cluster), "requested_by": _user(op.requested_by),
                        "approved_by": _user(op.approved_by)} for op in operations],
    }
