"""The report's facts (restores/selectors/drill_report.py) and its sign-off
(restores/services/reports.py): coverage judged against each plan's period, the period's
edges in a zone, the digest over every run's evidence, and who may prepare and sign."""

from __future__ import annotations

import datetime as dt
import hashlib
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
from restores.selectors.drill_report_runs import note_line, run_line
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
    lines = [run_line(r.pk, r.outcome, r.evidence_hash)
             for r in DrillRun.objects.order_by("slot_at", "id")]
    assert facts.summary["runs"] == {
        "count": 3, "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}
    assert all(line.endswith(f"|{r.evidence_hash}") for r, line in zip(
        DrillRun.objects.order_by("slot_at", "id"), lines, strict=True))
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


def test_a_page_of_the_report_and_the_whole_of_it_have_the_same_facts_and_digest() -> None:
    """The page reads most runs without their evidence; the PDF reads every run in full: a
    sign-off prepared from the page must match the PDF's facts exactly."""
    from restores.selectors import drill_report

    owner = user_with_role("rita", "operator")
    live, gone = ClusterFactory(name="live"), ClusterFactory(name="gone")
    plan = plan_for(live)
    for day in range(1, 29):
        sealed_run(live, plan=plan, at=dt.datetime(2026, 11, day, 3, tzinfo=dt.UTC),
                   outcome="failed" if day % 5 == 0 else "passed",
                   checks=[CHECK_ORPHANS] if day % 5 == 0 else None)
    sealed_run(gone, at=dt.datetime(2026, 11, 3, 4, tzinfo=dt.UTC), outcome="missed")
    gone.present = False
    gone.save(update_fields=["present"])
    DrillRun.objects.filter(outcome="failed").update(remediation_owner=owner,
                                                     remediation_note="replayed")
    whole = report_facts(NOVEMBER, now=NOW)
    old_size = drill_report.RUNS_PER_PAGE
    drill_report.RUNS_PER_PAGE = 10
    try:
        page = report_facts(NOVEMBER, now=NOW, page=2, digest=True)
    finally:
        drill_report.RUNS_PER_PAGE = old_size
    assert page.summary == whole.summary and page.digest == whole.digest
    assert (page.run_total, page.run_page, page.run_pages, len(page.runs)) == (29, 2, 3, 10)
    assert [r.run.pk for r in page.runs] == [r.run.pk for r in whole.runs[10:20]]
    assert page.runs[0].checks == whole.runs[10].checks != []
    assert [r.run.pk for r in page.deficiencies] == [r.run.pk for r in whole.deficiencies]
    failed = [r for r in page.deficiencies if r.run.outcome == "failed"]
    assert failed[0].failed_checks == ["no orphaned invoices"] and len(failed) == 5
    notes = [note_line(r.run.pk, r.run.remediation_status,
                       r.run.remediation_owner.username if r.run.remediation_owner else None,
                       r.run.remediation_note) for r in whole.deficiencies]
    assert notes[1] == f"{failed[0].run.pk}|open|rita|replayed"
    assert page.summary["deficiencies"] == {
        "count": 6, "sha256": hashlib.sha256("\n".join(notes).encode()).hexdigest()}
    # a follow-up changing changes the digest
    DrillRun.objects.filter(pk=failed[0].run.pk).update(remediation_status="resolved")
    assert report_facts(NOVEMBER, now=NOW, page=1, digest=True).digest != whole.digest
    assert report_facts(NOVEMBER, now=NOW, page=1).digest == ""  # no sign-off asks for it
