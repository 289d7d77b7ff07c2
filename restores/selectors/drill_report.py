"""The audit report of a period and a set of clusters: what DORA Art. 11-12, SOC 2 A1.3 and
ISO 27001 A.8.13 ask a restore test's record to show (docs: /work/shared/EVIDENCE.md).

    ReportFilter   the period (whole days in a time zone), the zone, platform / namespace;
                   read from a URL's GET, a bad value is a ReportParamError in words
    report_facts   the plans in scope and their policies, coverage, every run of the period
                   (scenario, isolated target, checks, planned vs measured RTO / RPO),
                   deficiencies, the recovery operations, the sign-offs of that exact period
                   and scope; and the summary whose SHA-256 a sign-off keeps

A fixed number of queries, whatever the fleet or the number of runs: the runs are counted
and hashed in the database (drill_report_runs.py), and a page of the HTML report reads in
full only its own runs and the first deficiencies; the PDF, CSV and JSON read every run.
The viewer's scope (`scope`, a cluster filter) bounds every query.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any, ClassVar

from django.db.models import Case, F, JSONField, OuterRef, Q, Subquery, When
from django.utils import timezone

from restores import schedules
from restores.charts import duration_text
from restores.models import Cluster, DrillPlan, DrillRun, Operation, ReportSignoff
from restores.models.drills import evidence_digest, plans_covering
from restores.selectors.drill_report_runs import DEFICIENT, RunStats, chart_series, run_stats
from restores.selectors.report_filter import ReportFilter as ReportFilter
from restores.selectors.report_filter import ReportParamError as ReportParamError

RECOVERY_KINDS = (Operation.Kind.CLONE, Operation.Kind.RESTORE_IN_PLACE,
                  Operation.Kind.RESTORE_DATABASE, Operation.Kind.PROMOTE,
                  Operation.Kind.SHUTDOWN, Operation.Kind.START)
NO_PLAN = "no plan covers it"
NEVER_PASSED = "no drill has passed"
LAST_PASSED_LONG_AGO = "its last pass is older than its plan's period ({period})"



@dataclasses.dataclass(frozen=True)
class RunRow:
    """A run as the report shows it."""

    run: DrillRun
    checks: list[dict[str, Any]]
    rto_met: bool | None  # None: no objective, or nothing measured
    rpo_met: bool | None

    @functools.cached_property
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
class PlanRef:
    """A plan as coverage, the summary and the charts need it. The report reads every plan
    that can cover a cluster in scope, a thousand at fleet scale: as tuples, 3 ms, where as
    models they cost 40 ms. The rows a page shows get their DrillPlan (plans_with_owners)."""

    pk: int
    name: str
    platform: str
    scope: str
    namespace: str
    cluster_name: str
    name_pattern: str
    labels: dict[str, str] | None  # read for a plan that matches by labels only
    schedule: str
    time_zone: str
    enabled: bool
    policy: str
    rto_objective_seconds: int | None
    rpo_objective_seconds: int | None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "pk", "name", "platform", "scope", "namespace", "cluster_name", "name_pattern",
        "match_labels", "schedule", "time_zone", "enabled", "policy", "rto_objective_seconds",
        "rpo_objective_seconds")


@dataclasses.dataclass(frozen=True)
class ClusterRef:
    """A cluster in the report's scope, read as a tuple (never a scratch copy, never one
    gone: the report reads only those present and not drills). `labels` is read only when
    a plan that matches by labels is in scope."""

    pk: int
    platform: str
    namespace: str
    name: str
    labels: dict[str, str]
    drill: bool = False
    present: bool = True


@dataclasses.dataclass(frozen=True)
class PlanRow:
    plan: PlanRef | DrillPlan  # a DrillPlan once plans_with_owners read it
    period: dt.timedelta | None
    clusters: int  # of those in scope
    runs: int  # in the period
    passed: int


@dataclasses.dataclass(frozen=True)
class Coverage:
    cluster: ClusterRef
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
    runs: list[RunRow]  # in full: every run, or one page of them (the HTML page)
    operations: list[Operation]
    signoffs: list[ReportSignoff]
    summary: dict[str, Any]
    digest: str
    deficiencies: list[RunRow]  # in full: every one, or the first DEFICIENCIES_SHOWN
    stats: RunStats  # every run of the period, counted and hashed
    series: dict[int, list[DrillRun]]  # the charted plans' runs, light, oldest first
    run_page: int = 1
    run_pages: int = 1

    @functools.cached_property
    def covered(self) -> int:
        return sum(1 for c in self.coverage if c.covered)

    @property
    def run_total(self) -> int:
        return self.stats.total

    @property
    def deficiency_total(self) -> int:
        return self.stats.deficient

    @functools.cached_property
    def not_covered(self) -> list[Coverage]:
        return [c for c in self.coverage if not c.covered]

    @functools.cached_property
    def policies(self) -> list[tuple[str, int, int]]:
        """Each policy the plans in scope serve: (policy, plans, clusters they cover)."""
        found: dict[str, list[int]] = {}
        for row in self.plans:
            counts = found.setdefault(row.plan.policy or "", [0, 0])
            counts[0] += 1
            counts[1] += row.clusters
        return sorted(((k, n, c) for k, (n, c) in found.items()), key=lambda x: (not x[0], x[0]))

    @functools.cached_property
    def plans_shown(self) -> list[PlanRow]:
        """What the page lists of the plans: those whose runs passed least first (the PDF
        and the JSON list every one)."""
        return sorted(self.plans, key=lambda p: (p.passed - p.runs, p.plan.name))[:PLANS_SHOWN]

    @functools.cached_property
    def not_covered_shown(self) -> list[Coverage]:
        """What the page lists of them (the PDF and the JSON list every one)."""
        return self.not_covered[:NOT_COVERED_SHOWN]

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


RUNS_PER_PAGE = 25
DEFICIENCIES_SHOWN = 50
NOT_COVERED_SHOWN = 50
PLANS_SHOWN = 25
FULL = ("plan", "cluster", "operation", "remediation_owner")
# A run shown in full: all of it, and of its relations what the report shows of them (a run
# not sealed yet shows its operation's result so far). Naming the columns keeps the join
# narrow: a page of runs costs a third of what the whole rows did.
FULL_FIELDS = (*(f.name for f in DrillRun._meta.concrete_fields),
               "plan__name", "plan__policy", "cluster__platform", "cluster__namespace",
               "cluster__name", "operation__result", "remediation_owner__username")


def _runs(base: Any, page: int | None, total: int
          ) -> tuple[list[RunRow], list[RunRow], int, int]:
    """(the runs shown in full, the deficiencies shown in full, page, pages): every one
    without a page (the PDF, CSV, JSON); with one, that page's runs and the first
    deficiencies, so a page costs the same whatever the period holds."""
    ordered = base.order_by("slot_at", "id")
    if page is None:
        rows = [_run_row(r) for r in ordered.select_related(*FULL).only(*FULL_FIELDS)]
        return rows, [r for r in rows if r.deficient], 1, 1
    pages = max(1, -(-total // RUNS_PER_PAGE))
    page = min(max(page, 1), pages)
    # The ids first (a narrow sort), then only those rows in full.
    shown_ids = list(ordered.values_list("pk", flat=True)[
        (page - 1) * RUNS_PER_PAGE: page * RUNS_PER_PAGE])
    deficient_ids = list(ordered.filter(DEFICIENT).values_list("pk", flat=True)[
        :DEFICIENCIES_SHOWN])
    full = {r.pk: _run_row(r) for r in DrillRun.objects.filter(
        pk__in=shown_ids + deficient_ids).select_related(*FULL).only(*FULL_FIELDS)}
    return [full[i] for i in shown_ids], [full[i] for i in deficient_ids], page, pages


def _charted(stats: RunStats, limit: int | None) -> list[int]:
    """The plans whose charts are drawn: every one with runs, or the `limit` with the most
    deficiencies."""
    ids = sorted(stats.by_plan, key=lambda pk: (-stats.by_plan[pk][2], pk))
    return ids if limit is None else ids[:limit]


def report_facts(selection: ReportFilter, *, scope: Q | None = None,
                 now: dt.datetime | None = None, page: int | None = None,
                 chart_plans: int | None = None, digest: bool | None = None) -> ReportFacts:
    """Everything the report shows for `selection`, of the clusters `scope` (a cluster
    filter without prefix) lets the viewer see. `page`: the HTML page's runs, that page in
    full (the summary and the digest always cover every run); None: every run in full
    (the PDF, CSV and JSON). `digest`: work out the digest (every run hashed); by default
    for the whole report, and for a page only when a sign-off of it exists to compare with
    (preparing one asks for it). Without it `digest` is ""."""
    now = now or timezone.now()
    start, end = selection.start, selection.end
    at = min(end, now)  # coverage is judged at the period's end, or now if it is not over
    scope = scope or Q()
    base = DrillRun.objects.filter(_prefixed(scope), selection.clusters("cluster__"),
                                   slot_at__gte=start, slot_at__lt=end)
    signoffs = list(ReportSignoff.objects.filter(
        period_start=start, period_end=end, platform=selection.platform,
        namespace=selection.namespace).select_related("prepared_by", "signed_by")
        .order_by("-prepared_at", "-id"))
    if digest is None:
        digest = page is None or bool(signoffs)
    stats = run_stats(base, hashed=digest)
    shown, deficient, run_page, run_pages = _runs(base, page, stats.total)
    series = chart_series(base, _charted(stats, chart_plans))
    # The plans that can cover a cluster of the selection (a plan of every namespace, "",
    # included); the owners of the plans shown are read by plans_with_owners.
    plans = [PlanRef(*row) for row in DrillPlan.objects.filter(
        *([Q(platform=selection.platform)] if selection.platform else []),
        *([Q(namespace__in=["", selection.namespace])] if selection.namespace else []),
    ).annotate(match_labels=Case(When(scope=DrillPlan.Scope.MATCH, then=F("labels")),
                                 output_field=JSONField())).values_list(*PlanRef.FIELDS)]
    clusters, passes = _clusters(selection, scope, plans, end)
    periods_at = schedules.Periods(at)
    periods = {p.pk: periods_at.of(p.schedule, p.time_zone) for p in plans}
    covers = plans_covering(plans, clusters)
    coverage = [_coverage(c, [p for p in covers[c.pk] if p.enabled], periods,
                          passes.get(c.pk), at) for c in clusters]
    plan_rows = _plan_rows(plans, periods, covers, stats)
    operations = list(Operation.objects.filter(
        _prefixed(scope), selection.clusters("cluster__"), kind__in=RECOVERY_KINDS,
        created_at__gte=start, created_at__lt=end,
    ).select_related("cluster", "requested_by", "approved_by").order_by("created_at", "id"))
    summary = report_summary(selection, plan_rows, coverage, stats, operations)
    return ReportFacts(selection, now, plan_rows, coverage, shown, operations, signoffs,
                       summary, evidence_digest(summary) if digest else "", deficient, stats,
                       series,
                       run_page, run_pages)


def _clusters(selection: ReportFilter, scope: Q, plans: list[PlanRef], end: dt.datetime
              ) -> tuple[list[ClusterRef], dict[int, dt.datetime]]:
    """The clusters in scope (their labels only when a pattern plan may ask for them), and
    each one's last pass before `end`: one query, a probe of drillrun_cluster_passes per
    cluster."""
    labels = ("labels",) if any(p.scope == DrillPlan.Scope.MATCH for p in plans) else ()
    last_pass = Subquery(DrillRun.objects.filter(
        cluster=OuterRef("pk"), outcome=DrillRun.Outcome.PASSED, slot_at__lt=end,
    ).order_by("-slot_at").values("slot_at")[:1])
    clusters, passes = [], {}
    for pk, platform, namespace, name, last, *rest in (
            Cluster.objects.filter(scope, selection.clusters(), drill=False, present=True)
            .annotate(last_pass=last_pass).order_by("platform", "namespace", "name")
            .values_list("pk", "platform", "namespace", "name", "last_pass", *labels)):
        clusters.append(ClusterRef(pk, platform, namespace, name, rest[0] if rest else {}))
        if last is not None:
            passes[pk] = last
    return clusters, passes


def plans_with_owners(rows: list[PlanRow]) -> list[PlanRow]:
    """`rows` with their plans read in full, owners included (one query for all), for a page
    that shows them."""
    full = DrillPlan.objects.select_related("owner").defer("checks").in_bulk(
        [r.plan.pk for r in rows])
    return [dataclasses.replace(r, plan=full[r.plan.pk]) for r in rows if r.plan.pk in full]


def _prefixed(scope: Q) -> Q:
    """The cluster filter `scope` (no prefix) as a filter of rows with a `cluster`."""
    if not scope.children:
        return Q()
    return Q(cluster__in=Cluster.objects.filter(scope))


def _coverage(cluster: ClusterRef, plans: list[PlanRef], periods: dict[int, dt.timedelta | None],
              last_pass: dt.datetime | None, at: dt.datetime) -> Coverage:
    names = [p.name for p in plans]
    if not plans:
        return Coverage(cluster, names, last_pass, False, NO_PLAN)
    if last_pass is None:
        return Coverage(cluster, names, last_pass, False, NEVER_PASSED)
    known = [d for d in (periods[p.pk] for p in plans) if d is not None]
    period = min(known) if known else None
    if period is not None and last_pass < at - period:
        return Coverage(cluster, names, last_pass, False, _long_ago(period))
    return Coverage(cluster, names, last_pass, True, "")


@functools.lru_cache(maxsize=64)
def _long_ago(period: dt.timedelta) -> str:
    return LAST_PASSED_LONG_AGO.format(period=duration_text(period.total_seconds()))


def _plan_rows(plans: list[PlanRef], periods: dict[int, dt.timedelta | None],
               covers: dict[int, list[PlanRef]], stats: RunStats) -> list[PlanRow]:
    """The plans in scope: those covering a cluster in scope, or with a run in the period."""
    clusters_of: dict[int, int] = {}
    for covering in covers.values():
        for plan in covering:
            clusters_of[plan.pk] = clusters_of.get(plan.pk, 0) + 1
    rows = []
    for plan in plans:
        covered = clusters_of.get(plan.pk, 0)
        runs, passed, _ = stats.runs_of(plan.pk)
        if covered or runs:
            rows.append(PlanRow(plan, periods[plan.pk], covered, runs, passed))
    return rows


def _where(cluster: Cluster | ClusterRef) -> str:
    return f"{cluster.platform}/{cluster.namespace}/{cluster.name}"


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def report_summary(selection: ReportFilter, plans: list[PlanRow], coverage: list[Coverage],
                   stats: RunStats, operations: list[Operation]) -> dict[str, Any]:
    """The facts a sign-off is of, as plain JSON (its SHA-256 is the sign-off's digest):
    every run (their count and one SHA-256 over each one's id, outcome and evidence hash),
    the deficiencies (their count and one SHA-256 over each one's follow-up: status, owner,
    note), coverage, the recovery operations. The JSON export lists every line of both."""
    return {
        "period": {"from": selection.first.isoformat(), "to": selection.last.isoformat(),
                   "time_zone": selection.tz, "start": selection.start.isoformat(),
                   "end": selection.end.isoformat()},
        "scope": {"platform": selection.platform, "namespace": selection.namespace},
        "plans": [{"plan": p.plan.name, "policy": p.plan.policy} for p in plans],
        "coverage": {"covered": sum(1 for c in coverage if c.covered),
                     "clusters": len(coverage),
                     "not_covered": [_where(c.cluster) for c in coverage if not c.covered]},
        "outcomes": stats.outcomes,
        "runs": {"count": stats.total, "sha256": stats.sha256},
        "deficiencies": {"count": stats.deficient, "sha256": stats.notes_sha256},
        "operations": [{"operation": str(op.pk), "kind": op.kind, "status": op.status,
                        "cluster": _where(op.cluster), "requested_by": _user(op.requested_by),
                        "approved_by": _user(op.approved_by)} for op in operations],
    }
