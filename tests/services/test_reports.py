"""The report's facts (restores/selectors/drill_report.py) and its sign-off
(restores/services/reports.py): coverage judged against each plan's period, the period's
edges in a zone, the digest over every run's evidence, and who may prepare and sign."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from restores.models import AuditEntry, DrillRun, ReportSignoff
from restores.models.drills import evidence_digest
from restores.selectors.drill_report import (
    LAST_PASSED_LONG_AGO,
    NEVER_PASSED,
    ReportFilter,
    ReportParamError,
    report_facts,
)
from restores.services import access, reports
from restores.services.errors import ServiceError
from tests.factories import ClusterFactory, user_with_role
from tests.report_rows import CHECK_ORPHANS, plan_for, sealed_run

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
NOVEMBER = ReportFilter(dt.date(2026, 11, 1), dt.date(2026, 11, 30))


def test_a_period_is_whole_days_in_its_zone() -> None:
    paris = ReportFilter.from_query({"from": "2026-03-29", "to": "2026-03-29",
                                     "tz": "Europe/Paris"})
    # the day summer time starts is 23 hours long
    assert paris.start == dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)
    assert paris.end - paris.start == dt.timedelta(hours=23)
    default = ReportFilter.from_query({}, now=NOW)
    assert (default.first, default.last, default.tz) == (dt.date(2026, 11, 1),
                                                         dt.date(2026, 11, 30), "UTC")
    with pytest.raises(ReportParamError, match="between 1970-01-01 and 2999-12-31"):
        ReportFilter.from_query({"from": "0001-01-01"})


def test_coverage_needs_a_pass_within_the_plans_period() -> None:
    fresh, stale, never = (ClusterFactory(name=n) for n in ("fresh", "stale", "never"))
    weekly = "0 3 * * 1"
    for cluster in (fresh, stale, never):
        plan_for(cluster, schedule=weekly)
    sealed_run(fresh, at=dt.datetime(2026, 11, 27, 3, tzinfo=dt.UTC))
    sealed_run(stale, at=dt.datetime(2026, 11, 2, 3, tzinfo=dt.UTC))  # four weeks old
    sealed_run(never, at=dt.datetime(2026, 11, 20, 3, tzinfo=dt.UTC), outcome="failed")
    facts = report_facts(NOVEMBER, now=NOW)
    why = {c.cluster.name: (c.covered, c.why) for c in facts.coverage}
    assert why == {"fresh": (True, ""), "stale": (False, LAST_PASSED_LONG_AGO.format(period="7 d")),
                   "never": (False, NEVER_PASSED)}
    assert facts.covered == 1 and facts.summary["coverage"]["clusters"] == 3


def test_the_digest_covers_every_runs_evidence_and_survives_being_stored() -> None:
    cluster = ClusterFactory(name="hippo")
    plan = plan_for(cluster)
    runs = [sealed_run(cluster, plan=plan, at=dt.datetime(2026, 11, d, 3, tzinfo=dt.UTC))
            for d in (3, 4)]
    sealed_run(cluster, plan=plan, at=dt.datetime(2026, 11, 5, 3, tzinfo=dt.UTC),
               outcome="failed", checks=[CHECK_ORPHANS])
    facts = report_facts(NOVEMBER, now=NOW)
    assert {r["evidence_sha256"] for r in facts.summary["runs"]} == set(
        DrillRun.objects.values_list("evidence_hash", flat=True))
    signoff = reports.report_prepare(
        user=user_with_role("olga", "operator"), period_start=NOVEMBER.start,
        period_end=NOVEMBER.end, time_zone="UTC", platform="", namespace="",
        summary=facts.summary)
    signoff.refresh_from_db()
    assert signoff.digest == facts.digest == evidence_digest(json.loads(json.dumps(
        signoff.summary)))
    # a run's evidence changing changes the digest
    DrillRun.objects.filter(pk=runs[0].pk).update(evidence_hash="f" * 64)
    assert report_facts(NOVEMBER, now=NOW).digest != signoff.digest
    entry = AuditEntry.objects.get(action="report.prepared")
    assert entry.params["digest_sha256"] == signoff.digest and entry.actor_name == "olga"


def _prepared(by: object, *, platform: str = "", namespace: str = "") -> ReportSignoff:
    facts = report_facts(NOVEMBER, now=NOW)
    return reports.report_prepare(user=by, period_start=NOVEMBER.start,  # type: ignore[arg-type]
                                  period_end=NOVEMBER.end, time_zone="UTC", platform=platform,
                                  namespace=namespace, summary=facts.summary)


def test_preparing_needs_the_operator_role_over_the_whole_scope() -> None:
    operator = user_with_role("olga", "operator", platform="local", namespace="team-a")
    with pytest.raises(access.AccessDenied) as refused:
        _prepared(operator, platform="local")
    assert refused.value.message == reports.PREPARE_DENIED.format(where="local/*",
                                                                  have="none there")
    viewer = user_with_role("vic", "viewer", platform="local", namespace="team-a")
    with pytest.raises(access.AccessDenied, match="you have the viewer role"):
        _prepared(viewer, platform="local", namespace="team-a")
    assert _prepared(operator, platform="local", namespace="team-a").prepared_by == operator


def test_signing_is_a_second_admins_once() -> None:
    alice, bob, carol = (user_with_role(n, "admin") for n in ("alice", "bob", "carol"))
    signoff = _prepared(alice)
    digest = report_facts(NOVEMBER, now=NOW).digest
    with pytest.raises(ServiceError) as own:
        reports.report_sign(user=alice, signoff_id=signoff.pk, current_digest=digest)
    assert own.value.message == reports.SIGN_OWN_REPORT
    with pytest.raises(ServiceError) as changed:
        reports.report_sign(user=bob, signoff_id=signoff.pk, current_digest="0" * 64)
    assert changed.value.message == reports.SIGN_CHANGED
    signed = reports.report_sign(user=bob, signoff_id=signoff.pk, current_digest=digest,
                                 note="ok")
    assert signed.signed_by == bob and signed.note == "ok"
    with pytest.raises(ServiceError, match="already signed by bob"):
        reports.report_sign(user=carol, signoff_id=signoff.pk, current_digest=digest)
    with pytest.raises(ServiceError) as unknown:
        reports.report_sign(user=carol, signoff_id=signoff.pk + 1000, current_digest=digest)
    assert unknown.value.message == reports.SIGNOFF_UNKNOWN
    assert AuditEntry.objects.filter(action="report.signed").count() == 1
    operator = user_with_role("otto", "operator")
    with pytest.raises(access.AccessDenied, match="needs the admin role"):
        reports.report_sign(user=operator, signoff_id=_prepared(alice).pk,
                            current_digest=digest)
