"""The audit report: the page, its PDF, CSV and JSON, its sign-off; scoped by role, a fixed
number of queries whatever the number of runs."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restores.models import AuditEntry, Cluster, DrillRun, ReportSignoff
from restores.models.drills import evidence_digest
from restores.selectors import drill_report
from restores.services import reports
from tests.factories import ClusterFactory, OperationFactory, UserFactory, user_with_role
from tests.report_rows import CHECK_OK, CHECK_ORPHANS, POLICY, plan_for, sealed_run

pytestmark = pytest.mark.django_db

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
LAST = timezone.now().date() - dt.timedelta(days=1)  # the period ends yesterday
FIRST = LAST - dt.timedelta(days=6)
PERIOD = f"from={FIRST}&to={LAST}"
URL = f"/drills/report/?{PERIOD}"


def _at(days_before_last: int, hour: int = 3) -> dt.datetime:
    return dt.datetime.combine(LAST - dt.timedelta(days=days_before_last), dt.time(hour),
                               dt.UTC)


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def fleet() -> dict[str, Any]:
    """team-a: hippo (daily plan, passing) and zebra (daily plan: a failed run with a failing
    check and an RTO over its objective, then a missed run); team-b: lonely (no plan, one
    manual pass). A restore in place of hippo, requested by ron and approved by alice."""
    olga = UserFactory(username="olga")
    hippo = ClusterFactory(namespace="team-a", name="hippo")
    zebra = ClusterFactory(namespace="team-a", name="zebra")
    lonely = ClusterFactory(namespace="team-b", name="lonely")
    ClusterFactory(namespace="team-a", name="hippo-drill-abc123", drill=True)  # never counted
    plan_h, plan_z = plan_for(hippo, owner=olga), plan_for(zebra, owner=olga)
    runs = [sealed_run(hippo, plan=plan_h, at=_at(d)) for d in (2, 1, 0)]
    failed = sealed_run(zebra, plan=plan_z, at=_at(1), outcome="failed", rto=420.0,
                        checks=[CHECK_OK, CHECK_ORPHANS], reason="no orphaned invoices: 17 rows")
    missed = sealed_run(zebra, plan=plan_z, at=_at(0), outcome="missed",
                        reason="Not started within its window")
    sealed_run(lonely, at=_at(0))
    before = sealed_run(hippo, plan=plan_h, at=_at(30))  # outside the period
    restore = OperationFactory(cluster=hippo, kind="restore_in_place", status="succeeded",
                               created_at=_at(1, 12), requested_by=UserFactory(username="ron"),
                               approved_by=UserFactory(username="alice"),
                               approved_at=_at(1, 13))
    return {"hippo": hippo, "zebra": zebra, "lonely": lonely, "runs": runs, "failed": failed,
            "missed": missed, "before": before, "restore": restore, "plan": plan_h}


def test_the_report_shows_plans_coverage_runs_deficiencies_and_operations(
    client: Client, fleet: dict[str, Any]
) -> None:
    r = client.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert POLICY in html and "hippo daily" in html
    assert "2 of 3 clusters" not in html and "1 of 3 clusters drilled" in html
    zebra = html.split('data-cluster="team-a/zebra"')[1].split("</tr>")[0]
    assert drill_report.NEVER_PASSED in zebra
    assert drill_report.NO_PLAN in html.split('data-cluster="team-b/lonely"')[1]
    assert "hippo-drill-abc123" not in html.split('id="report-coverage"')[1].split("</section>")[0]
    for run in (*fleet["runs"], fleet["failed"], fleet["missed"]):
        assert f'data-run="{run.pk}"' in html
    assert f'data-run="{fleet["before"].pk}"' not in html
    failed = html.split(f'data-run="{fleet["failed"].pk}"')[1].split('class="report-run"')[0]
    assert "no orphaned invoices" in failed and "17 rows" in failed
    assert "planned 300 s (5 min) · measured 420 s (7 min)" in failed
    assert "objective missed" in failed and fleet["failed"].evidence_hash in failed
    passed = html.split(f'data-run="{fleet["runs"][0].pk}"')[1].split('class="report-run"')[0]
    assert "planned 300 s (5 min) · measured 61.5 s · met" in passed
    assert f"<code>{fleet['runs'][0].scenario['scratch']}</code>" in passed
    deficiencies = html.split('id="report-deficiencies"')[1].split("</section>")[0]
    assert f'data-deficiency="{fleet["failed"].pk}"' in deficiencies
    assert f'data-deficiency="{fleet["missed"].pk}"' in deficiencies
    assert "olga" in deficiencies and "open" in deficiencies
    ops = html.split('id="report-operations"')[1].split("</section>")[0]
    assert f'data-operation="{fleet["restore"].pk}"' in ops and "ron" in ops and "alice" in ops
    assert 'id="chart-rto-report-' in html and 'id="prepare-form"' in html
    assert "no sign-off exists for this exact period and scope" in html


def test_times_are_in_the_chosen_zone_with_utc_beside(client: Client,
                                                      fleet: dict[str, Any]) -> None:
    html = client.get(f"{URL}&tz=Asia/Tokyo").content.decode()
    run = html.split(f'data-run="{fleet["runs"][0].pk}"')[1]
    # 03:00 UTC is 12:00 in Tokyo the same day
    assert f"{LAST - dt.timedelta(days=2)} 12:00 JST (03:00 UTC)" in run
    # the period: Tokyo's midnights
    assert f"{FIRST} 00:00 JST ({FIRST - dt.timedelta(days=1)} 15:00 UTC)" in html


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-13-01", "“from” must be a day written YYYY-MM-DD"),
    ("from=yesterday", "“from” must be a day written YYYY-MM-DD"),
    ("to=2026-11-01&from=2026-11-30", "The period ends (2026-11-01) before it starts"),
    ("tz=Mars/Olympus", "Mars/Olympus is not a time zone"),
    ("from=2000-01-01&to=2026-01-01", "A report covers at most 1100 days"),
    ("to=2026-02-30", "“to” must be a day written"),
])
def test_bad_parameters_get_a_message_never_a_500(client: Client, query: str,
                                                  message: str) -> None:
    r = client.get(f"/drills/report/?{query}")
    assert r.status_code == 400 and message in unescape(r.content.decode())
    assert 'id="report-filters"' in r.content.decode()
    for fmt in ("pdf", "csv", "json"):
        r = client.get(f"/drills/report.{fmt}?{query}")
        text = json.loads(r.content)["error"] if fmt == "json" else r.content.decode()
        assert r.status_code == 400 and message in text, fmt


def test_the_csv_has_every_run_and_no_formula(client: Client, fleet: dict[str, Any]) -> None:
    DrillRun.objects.filter(pk=fleet["failed"].pk).update(
        remediation_note="=HYPERLINK(\"http://x\")", reason="@SUM(1)")
    r = client.get(f"/drills/report.csv?{PERIOD}")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0][:3] == ["slot_at", "slot_at_utc", "cluster"] and len(rows) == 1 + 6
    failed = next(dict(zip(rows[0], row, strict=True)) for row in rows[1:]
                  if row[rows[0].index("run")] == str(fleet["failed"].pk))
    assert failed["remediation_note"].startswith("'=") and failed["reason"] == "'@SUM(1)"
    assert failed["failed_checks"] == "no orphaned invoices" and failed["checks_passed"] == "1/2"
    assert failed["rto_seconds"] == "420.0" and failed["rto_objective_seconds"] == "300"
    assert failed["evidence_sha256"] == fleet["failed"].evidence_hash
    assert failed["isolated_target"].startswith("team-a/zebra-drill-")


def test_the_json_has_the_summary_its_digest_and_every_run(client: Client,
                                                           fleet: dict[str, Any]) -> None:
    data = json.loads(client.get(f"/drills/report.json?{PERIOD}").content)
    assert data["digest_sha256"] == evidence_digest(data["summary"])
    # The summary's runs hash is the SHA-256 of every run's line, and each line holds its
    # run's evidence hash: anyone can check it against the runs the JSON lists.
    lines = [r["hash_line"] for r in data["runs"]]
    assert data["summary"]["runs"] == {
        "count": len(lines), "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}
    notes = [r["follow_up_line"] for r in data["runs"] if r["deficient"]]
    assert data["summary"]["deficiencies"] == {
        "count": len(notes), "sha256": hashlib.sha256("\n".join(notes).encode()).hexdigest()}
    failed_line = next(r["hash_line"] for r in data["runs"] if r["run"] == fleet["failed"].pk)
    assert failed_line == f"{fleet['failed'].pk}|failed|{fleet['failed'].evidence_hash}"
    assert data["summary"]["coverage"] == {
        "covered": 1, "clusters": 3, "not_covered": ["local/team-a/zebra", "local/team-b/lonely"]}
    failed = next(r for r in data["runs"] if r["run"] == fleet["failed"].pk)
    assert failed["rto"] == {"objective_seconds": 300, "measured_seconds": 420.0, "met": False}
    assert [c["check"] for c in failed["checks"] if not c["ok"]] == ["no orphaned invoices"]


def test_an_operator_prepares_and_another_admin_signs(fleet: dict[str, Any]) -> None:
    operator = user_with_role("olivia", "operator", platform="local", namespace="team-a")
    scope = f"{PERIOD}&platform=local&namespace=team-a"
    page = _client(operator).get(f"{URL}&platform=local&namespace=team-a").content.decode()
    assert 'id="prepare-form"' in page and 'id="sign-form"' not in page
    r = _client(operator).post("/drills/report/prepare/", {
        "from": str(FIRST), "to": str(LAST), "tz": "UTC", "platform": "local",
        "namespace": "team-a"})
    assert r.status_code == 302 and r["Location"].endswith("#signoff")
    signoff = ReportSignoff.objects.get()
    assert signoff.prepared_by == operator and signoff.digest == evidence_digest(signoff.summary)
    in_scope = DrillRun.objects.filter(cluster__namespace="team-a",
                                       slot_at__gte=signoff.period_start,
                                       slot_at__lt=signoff.period_end).count()
    assert signoff.summary["runs"]["count"] == in_scope > 0
    assert len(signoff.summary["runs"]["sha256"]) == 64
    assert signoff.summary["deficiencies"]["count"] >= 1
    assert AuditEntry.objects.filter(action="report.prepared").count() == 1
    bob = user_with_role("bob", "admin", platform="local", namespace="team-a")
    page = _client(bob).get(f"/drills/report/?{scope}").content.decode()
    assert 'id="sign-form"' in page and "not yet" in page
    r = _client(bob).post(f"/drills/report/signoffs/{signoff.pk}/sign/", {"note": "reviewed"})
    assert r.status_code == 302
    signoff.refresh_from_db()
    assert signoff.signed_by == bob and signoff.signed_at is not None
    entry = AuditEntry.objects.get(action="report.signed")
    assert entry.actor_name == "bob" and entry.params["digest_sha256"] == signoff.digest
    page = _client(operator).get(f"/drills/report/?{scope}").content.decode()
    signed = page.split('id="signoff-signed"')[1].split("</dd>")[0]
    assert "by bob at" in signed and "matches the report above" in page
    # Another period or scope has no sign-off.
    assert "no sign-off exists" in _client(bob).get(URL).content.decode()


def test_the_author_cannot_sign_their_own_report(client: Client, user: Any,
                                                 fleet: dict[str, Any]) -> None:
    client.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST)})
    signoff = ReportSignoff.objects.get()
    r = client.post(f"/drills/report/signoffs/{signoff.pk}/sign/")
    assert r.status_code == 422
    page = r.content.decode()
    assert reports.SIGN_OWN_REPORT in unescape(page.split('id="sign-error"')[1].split("</p>")[0])
    assert 'id="sign-form"' in page
    signoff.refresh_from_db()
    assert signoff.signed_at is None and not AuditEntry.objects.filter(
        action="report.signed").exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_cannot_sign(role: str, client: Client,
                                           fleet: dict[str, Any]) -> None:
    client.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST)})
    signoff = ReportSignoff.objects.get()
    who = _client(user_with_role(f"a-{role}", role))
    assert 'id="sign-form"' not in who.get(URL).content.decode()
    r = who.post(f"/drills/report/signoffs/{signoff.pk}/sign/")
    assert r.status_code == 403 and "needs the admin role" in r.content.decode()
    signoff.refresh_from_db()
    assert signoff.signed_at is None


def test_an_admin_of_one_namespace_cannot_sign_the_whole_platform(
    client: Client, fleet: dict[str, Any]
) -> None:
    client.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST),
                                            "platform": "local"})
    signoff = ReportSignoff.objects.get()
    ns_admin = _client(user_with_role("nadia", "admin", platform="local", namespace="team-a"))
    assert ns_admin.post(f"/drills/report/signoffs/{signoff.pk}/sign/").status_code == 403


def test_a_report_whose_facts_changed_is_prepared_again_before_it_is_signed(
    client: Client, fleet: dict[str, Any]
) -> None:
    client.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST)})
    signoff = ReportSignoff.objects.get()
    DrillRun.objects.filter(pk=fleet["failed"].pk).update(remediation_status="resolved")
    bob = _client(user_with_role("bob", "admin"))
    assert "the report above has changed since" in bob.get(URL).content.decode()
    r = bob.post(f"/drills/report/signoffs/{signoff.pk}/sign/")
    assert r.status_code == 422 and reports.SIGN_CHANGED in unescape(r.content.decode())
    signoff.refresh_from_db()
    assert signoff.signed_at is None


def test_a_viewer_of_one_namespace_sees_only_its_clusters(fleet: dict[str, Any]) -> None:
    viewer = _client(user_with_role("vera", "viewer", platform="local", namespace="team-b"))
    html = viewer.get(URL).content.decode()
    assert 'data-cluster="team-b/lonely"' in html and "team-a/" not in html
    assert f'data-run="{fleet["failed"].pk}"' not in html and "hippo daily" not in html
    assert f'data-operation="{fleet["restore"].pk}"' not in html
    assert 'id="prepare-form"' not in html
    data = json.loads(viewer.get(f"/drills/report.json?{PERIOD}").content)
    assert {r["cluster"] for r in data["runs"]} == {"local/team-b/lonely"}
    assert viewer.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST),
                                                   "platform": "local",
                                                   "namespace": "team-b"}).status_code == 403
    drills = viewer.get("/drills/").content.decode()
    assert 'id="drill-plans"' in drills and "hippo daily" not in drills


def _queries(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_report_and_the_drills_page_make_the_same_queries_for_more_runs(
    client: Client, fleet: dict[str, Any]
) -> None:
    hippo: Cluster = fleet["hippo"]
    urls = [URL, f"/drills/report.json?{PERIOD}", f"/drills/report.csv?{PERIOD}", "/drills/",
            f"/drills/?cluster={hippo.pk}"]
    small = {u: _queries(client, u) for u in urls}
    owner = UserFactory(username="otto")
    for i in range(6):
        cluster = ClusterFactory(namespace="team-a")
        plan = plan_for(cluster, owner=owner)
        for d in range(4):
            sealed_run(cluster, plan=plan, at=_at(d), outcome="failed" if d % 2 else "passed",
                       checks=[CHECK_OK, CHECK_ORPHANS] if d % 2 else None)
        sealed_run(hippo, plan=fleet["plan"], at=_at(i, hour=9))
        OperationFactory(cluster=cluster, kind="clone", status="succeeded", created_at=_at(i),
                         requested_by=UserFactory())
    large = {u: _queries(client, u) for u in urls}
    assert large == small


def test_the_pdf_has_the_runs_the_failing_checks_and_the_sign_off(
    client: Client, fleet: dict[str, Any]
) -> None:
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        pytest.skip("poppler-utils is not installed")
    hippo, zebra = fleet["hippo"], fleet["zebra"]
    for i in range(44):  # about fifty runs in the period
        sealed_run(hippo if i % 2 else zebra, plan=fleet["plan"], at=_at(i % 7, hour=4 + i % 12),
                   rto=100.0 + i)
    client.post("/drills/report/prepare/", {"from": str(FIRST), "to": str(LAST)})
    bob = _client(user_with_role("bob", "admin"))
    signed = bob.post(f"/drills/report/signoffs/{ReportSignoff.objects.get().pk}/sign/")
    assert signed.status_code == 302
    started = time.monotonic()
    r = client.get(f"/drills/report.pdf?{PERIOD}")
    seconds = time.monotonic() - started
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "drill-report.pdf"
    pdf.write_bytes(r.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          check=True, text=True, timeout=60).stdout
    assert "measured 61.5 s" in text and "measured 420 s (7 min)" in text
    assert "no orphaned invoices" in text
    assert "by bob at" in text and POLICY.split(":")[0] in text
    png = ARTIFACTS / "drill-report-page1"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(png)], check=True, timeout=60)
    image = png.with_suffix(".png").read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000
    width, height = (int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big"))
    assert 405 <= width <= 420 and 580 <= height <= 590  # A4 at 50 dpi
    print(f"\nPDF of {DrillRun.objects.filter(slot_at__date__gte=FIRST).count()} runs: "
          f"{seconds:.2f} s, {len(r.content)} bytes")


HOSTILE = st.sampled_from(["", " ", "²", "9" * 30, "-1", "0001-01-01", "9999-12-31",
                           "2026-02-29", "<script>x</script>", "\x00", "\u202e", "a" * 3000,
                           "%00", "{{x}}", "Nowhere/Land", "Etc/GMT+12", "Pacific/Kiritimati",
                           "../../etc/passwd", "local", "team-a"])
VALUE = st.one_of(HOSTILE, st.text(max_size=40),
                  st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(str))


def test_hostile_report_parameters_are_never_a_server_error(client: Client) -> None:
    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.fixed_dictionaries({}, optional={k: VALUE for k in (
        "from", "to", "tz", "platform", "namespace")}))
    def run(params: dict[str, str]) -> None:
        for url in ("/drills/report/", "/drills/report.json", "/drills/report.csv"):
            r = client.get(url, params)
            assert r.status_code in (200, 400), (url, params, r.status_code)
        r = client.post("/drills/report/prepare/", params)
        assert r.status_code in (302, 403, 422), (params, r.status_code)
        if r.status_code == 422:
            assert 'role="alert"' in r.content.decode()

    run()


def test_a_page_works_out_the_digest_only_when_a_sign_off_needs_it(
        client: Client, fleet: dict[str, Any]) -> None:
    before = client.get(URL).content.decode()
    assert 'id="report-digest"' not in before and 'id="prepare-form"' in before
    assert client.post("/drills/report/prepare/", {
        "from": str(FIRST), "to": str(LAST), "tz": "UTC"}).status_code == 302
    signoff = ReportSignoff.objects.get()
    after = client.get(URL).content.decode()
    assert f'<code id="report-digest">{signoff.digest}</code>' in after
    assert "matches the report above" in after
    data = json.loads(client.get(f"/drills/report.json?{PERIOD}").content)
    assert data["digest_sha256"] == signoff.digest
