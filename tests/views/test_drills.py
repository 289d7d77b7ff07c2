"""Drill views: the form on the cluster page, the report on the operation page, the Drills
page and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from restores.forms.drills import DRILL_TIME_NEEDED
from restores.models import Cluster, Operation
from restores.platforms.targets import target_from_json, target_to_json
from restores.services import drills
from tests.factories import ClusterFactory, OperationFactory, UserFactory, user_with_role
from tests.fakes import T0
from tests.report_rows import CHECK_ORPHANS, plan_for, sealed_run

pytestmark = pytest.mark.django_db

URL = "/clusters/local/local/hippo/drill/"


def test_it_starts_a_drill_and_sends_htmx_to_the_operation(client: Client, hippo_row: Cluster,
                                                           hx: dict[str, str]) -> None:
    r = client.post(URL, {"repo": "repo1", "kind": "latest"}, **hx)
    op = Operation.objects.get()
    assert r.status_code == 200 and r["HX-Redirect"] == f"/operations/{op.id}/"
    assert op.kind == "drill" and not op.exclusive and op.cluster == hippo_row
    assert op.requested_by is not None and op.requested_by.get_username() == "dba"


def test_a_time_is_read_as_utc(client: Client, hippo_row: Cluster) -> None:
    r = client.post(URL, {"repo": "repo1", "kind": "time", "at": "2026-11-24T09:30:00"})
    assert r.status_code == 302
    point = Operation.objects.get().params["point"]
    assert (point["kind"], point["time"]) == ("time", "2026-11-24T09:30:00+00:00")
    assert point == target_to_json(target_from_json(point))  # the one stored form


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"repo": "repo1", "kind": "time"}, "at", DRILL_TIME_NEEDED),
        ({"repo": "repo1", "kind": "time", "at": "2026-11-24T12:00:00"}, "at",
         "is after the last archived WAL of repo1"),
        ({"repo": "repo1", "kind": "time", "at": "yesterday"}, "at", "Enter a valid date/time."),
        ({"repo": "repo9", "kind": "latest"}, "repo", "hippo has no such repo with a backup."),
        ({"repo": "repo1", "kind": "lsn"}, "kind", "Select a valid choice."),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field(
    client: Client, hippo_row: Cluster, hx: dict[str, str], data: dict[str, str], field: str,
    message: str,
) -> None:
    r = client.post(URL, data, **hx)
    assert r.status_code == 422
    html = r.content.decode()
    assert html.lstrip().startswith('<form id="drill-form"')
    assert f'id="error-{field}"' in html and message in html
    assert not Operation.objects.exists()


def test_a_second_drill_is_refused_on_the_form(client: Client, hippo_row: Cluster,
                                               hx: dict[str, str]) -> None:
    client.post(URL, {"repo": "repo1", "kind": "latest"}, **hx)
    r = client.post(URL, {"repo": "repo1", "kind": "latest"}, **hx)
    assert r.status_code == 422
    assert drills.DRILL_ALREADY_RUNNING.format(cluster="hippo") in r.content.decode()
    assert Operation.objects.count() == 1


def test_without_htmx_a_refusal_renders_the_whole_page(client: Client, hippo_row: Cluster) -> None:
    r = client.post(URL, {"repo": "repo1", "kind": "time"})
    assert r.status_code == 422 and "<html" in r.content.decode()


def test_the_form_needs_csrf(hippo_row: Cluster, user: object) -> None:
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)  # type: ignore[arg-type]
    assert c.post(URL, {"repo": "repo1", "kind": "latest"}).status_code == 403


def test_the_cluster_page_has_the_drill_card_and_the_last_passed_drill(
    client: Client, hippo_row: Cluster
) -> None:
    html = client.get(hippo_row.get_absolute_url()).content.decode()
    assert 'id="drill-form"' in html and 'id="last-drill"' not in html
    # Its fields' ids are its own: the backup form on the page has a repo too.
    assert html.count('id="id_repo"') == 1 and html.count('id="drill_repo"') == 1
    op = _drill(hippo_row, status="succeeded", rto=61.5, rpo=12.0)
    html = client.get(hippo_row.get_absolute_url()).content.decode()
    assert f'href="{op.get_absolute_url()}" id="last-drill"' in html
    assert "RTO 61.5 s, RPO 12.0 s" in html


def _drill(cluster: Cluster, *, status: str = "succeeded", rto: float | None = 61.5,
           rpo: float | None = 12.0, at: dt.datetime | None = None, **kwargs: object) -> Operation:
    at = at or timezone.now()
    result = {"rto_seconds": rto, "rpo_seconds": rpo, "restore_seconds": 3.1,
              "backup_set": "20261124-090000F", "scratch": f"{cluster.name}-drill-abcdef",
              "destroyed_at": at.isoformat(),
              "checks": [{"check": "accepts writes", "ok": True, "detail": "yes"},
                         {"check": "same system", "ok": status == "succeeded", "detail": "id"}],
              "verification": {"server_version": "15.20", "system_identifier": "744",
                               "databases": [{"name": "hippo", "size_bytes": 30_000_000,
                                              "user_tables": 3}],
                               "last_replayed_commit": T0.isoformat()}}
    return OperationFactory(
        cluster=cluster, kind="drill", exclusive=False, status=status, created_at=at,
        started_at=at, finished_at=at + dt.timedelta(seconds=70) if status != "running" else None,
        params={"repo": "repo1", "point": {"kind": "latest", "time": ""},
                "requested_at": at.isoformat()},
        refs={"trigger": "x", "scratch": {"namespace": "local",
                                          "name": f"{cluster.name}-drill-abcdef"},
              "backup_set": "20261124-090000F", "command": "pgbackrest restore"},
        result=result if status != "running" else {}, **kwargs)


def test_the_operation_page_shows_the_drill_report(client: Client, hippo_row: Cluster) -> None:
    op = _drill(hippo_row)
    html = client.get(op.get_absolute_url()).content.decode()
    assert "<h1>Drill of hippo</h1>" in html
    assert 'id="drill-rto">61.5 s' in html and 'id="drill-rpo">12.0 s' in html
    assert 'id="drill-checks"' in html and 'id="drill-databases"' in html
    assert '<code id="drill-scratch">hippo-drill-abcdef</code> · deleted' in html
    assert 'id="drill-command">pgbackrest restore' in html


def test_a_running_drill_shows_what_is_known_so_far(client: Client, hippo_row: Cluster,
                                                    hx: dict[str, str]) -> None:
    op = _drill(hippo_row, status="running")
    html = client.get(op.get_absolute_url(), **hx).content.decode()
    assert html.lstrip().startswith('<section id="progress"')
    assert 'id="drill-report"' in html and "once the copy is writable" in html


def test_the_drills_page_lists_every_drill_newest_first(client: Client, hippo_row: Cluster) -> None:
    other = ClusterFactory(name="zebra")
    old = _drill(hippo_row, at=timezone.now() - dt.timedelta(days=2))
    failed = _drill(other, status="failed", rto=None, error_reason="Verification failed")
    new = _drill(hippo_row, at=timezone.now() + dt.timedelta(seconds=1),
                 requested_by=UserFactory(username="alice"))
    html = client.get("/drills/").content.decode()
    assert [html.index(f'data-drill="{o.pk}"') for o in (new, failed, old)] == sorted(
        html.index(f'data-drill="{o.pk}"') for o in (new, failed, old))
    assert "alice" in html and "Verification failed" in html
    assert 'id="nav-drills"' in html
    # The summary: hippo's last pass, zebra never passed.
    assert f'href="/operations/{new.pk}/"' in html
    zebra = html.split('data-cluster="local/zebra"')[1].split("</tr>")[0]
    assert "no drill has passed yet" in zebra
    mine = html.split('data-cluster="local/hippo"')[1].split("</tr>")[0]
    assert f'<a href="/operations/{new.pk}/">' in mine and "61.5 s" in mine
    assert '<a href="/clusters/local/local/hippo/">local/hippo</a>' in mine
    assert f'<option value="{other.pk}">local/zebra</option>' in html


def test_the_drills_page_filters_by_cluster_and_outcome(client: Client, hippo_row: Cluster) -> None:
    other = ClusterFactory(name="zebra")
    mine = _drill(hippo_row)
    theirs = _drill(other, status="failed")
    html = client.get(f"/drills/?cluster={hippo_row.pk}").content.decode()
    assert f'data-drill="{mine.pk}"' in html and f'data-drill="{theirs.pk}"' not in html
    html = client.get("/drills/?outcome=failed").content.decode()
    assert f'data-drill="{mine.pk}"' not in html and f'data-drill="{theirs.pk}"' in html
    assert 'href="/drills.csv?outcome=failed"' in html
    # Nonsense filters are ignored, not errors.
    assert client.get("/drills/?cluster=x&outcome=maybe&page=-3").status_code == 200


def test_the_drills_page_is_paged(client: Client, hippo_row: Cluster, hx: dict[str, str]) -> None:
    now = timezone.now()
    ops = [_drill(hippo_row, at=now - dt.timedelta(minutes=i)) for i in range(53)]
    first = client.get("/drills/").content.decode()
    assert first.count("data-drill=") == 50 and "page 1 of 2" in first
    second = client.get("/drills/?page=2", **hx).content.decode()
    assert second.lstrip().startswith('<section class="card" id="drill-table"')
    assert second.count("data-drill=") == 3 and f'data-drill="{ops[-1].pk}"' in second


def test_the_csv_has_the_same_rows(client: Client, hippo_row: Cluster) -> None:
    _drill(hippo_row, at=timezone.now() - dt.timedelta(hours=1))
    _drill(hippo_row, status="failed", error_reason="=cmd|' /C calc'!A0")
    r = client.get("/drills.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0][:6] == ["requested_at", "cluster", "platform", "repo", "point", "outcome"]
    assert [row[5] for row in rows[1:]] == ["failed", "succeeded"]
    ok = dict(zip(rows[0], rows[2], strict=True))
    assert ok["rto_seconds"] == "61.5" and ok["rpo_seconds"] == "12.0"
    assert ok["checks_passed"] == "2/2" and ok["cluster"] == "local/hippo"
    assert ok["operation"].startswith("http://testserver/operations/")
    failed = dict(zip(rows[0], rows[1], strict=True))
    assert failed["reason"].startswith("'=")  # never a formula in a spreadsheet
    filtered = client.get("/drills.csv?outcome=succeeded")
    assert len(list(csv.reader(io.StringIO(
        b"".join(filtered.streaming_content).decode())))) == 2


def _queries(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        r = client.get(url)
        if hasattr(r, "streaming_content"):
            b"".join(r.streaming_content)
    return len(queries)


def test_the_report_makes_the_same_queries_for_more_drills(client: Client,
                                                           hippo_row: Cluster) -> None:
    _drill(hippo_row)
    urls = ["/drills/", "/drills/?outcome=succeeded", f"/drills/?cluster={hippo_row.pk}",
            "/drills.csv", hippo_row.get_absolute_url()]
    small = {u: _queries(client, u) for u in urls}
    for i in range(12):
        cluster = ClusterFactory()
        _drill(cluster, status="failed" if i % 3 else "succeeded",
               requested_by=UserFactory())
        _drill(cluster, at=timezone.now() - dt.timedelta(days=1))
    large = {u: _queries(client, u) for u in urls}
    assert large == small


def test_the_drills_page_puts_failing_and_overdue_plans_first_with_their_charts(
    client: Client,
) -> None:
    now = timezone.now()
    good, failing, overdue, new = (ClusterFactory(name=n) for n in ("good", "bad", "late", "new"))
    plans = {
        "a good": plan_for(good, name="a good"), "b failing": plan_for(failing, name="b failing"),
        "c overdue": plan_for(overdue, name="c overdue"),
        # created an hour ago: not overdue before a whole period has passed
        "d new": plan_for(new, name="d new", created_at=now - dt.timedelta(hours=1)),
    }
    sealed_run(good, plan=plans["a good"], at=now - dt.timedelta(hours=2))
    sealed_run(failing, plan=plans["b failing"], at=now - dt.timedelta(hours=30))
    sealed_run(failing, plan=plans["b failing"], at=now - dt.timedelta(hours=3), outcome="failed",
               checks=[CHECK_ORPHANS], rto=900.0)
    sealed_run(overdue, plan=plans["c overdue"], at=now - dt.timedelta(days=5))
    html = client.get("/drills/").content.decode()
    section = html.split('id="drill-plans"')[1].split("</section>")[0]
    order = [section.index(f'data-plan="{plans[n].pk}"') for n in plans]
    assert [n for _, n in sorted(zip(order, plans, strict=True))] == [
        "b failing", "c overdue", "a good", "d new"]
    def card(name: str) -> str:
        return section.split(f'data-plan="{plans[name].pk}"')[1].split("</article>")[0]
    assert "failing" in card("b failing") and "overdue" not in card("a good")
    assert "overdue" in card("c overdue") and "overdue" not in card("d new")
    bad = card("b failing")
    assert f'id="chart-rto-plan-{plans["b failing"].pk}"' in bad
    assert f'id="chart-rpo-plan-{plans["b failing"].pk}"' in bad
    assert bad.count('class="chart-point chart-fail"') == 2  # the failed run, in both charts
    assert 'class="chart-objective"' in bad and "style=" not in bad
    assert 'href="/drills/report/" id="drills-report">Report</a>' in html


def test_filtered_by_a_cluster_the_page_charts_that_cluster(client: Client) -> None:
    cluster = ClusterFactory(name="charted")
    plan = plan_for(cluster)
    now = timezone.now()
    for hours in (50, 26, 2):
        sealed_run(cluster, plan=plan, at=now - dt.timedelta(hours=hours))
    assert 'id="drill-cluster-chart"' not in client.get("/drills/").content.decode()
    html = client.get(f"/drills/?cluster={cluster.pk}").content.decode()
    chart = html.split('id="drill-cluster-chart"')[1].split("</section>")[0]
    assert 'id="chart-rto-cluster"' in chart and chart.count('class="chart-point chart-ok"') == 6
    # a cluster without runs, or one the viewer may not see: no chart, no error
    assert 'id="drill-cluster-chart"' not in client.get("/drills/?cluster=999999").content.decode()


def test_a_viewer_sees_the_plans_of_its_namespace_only(hippo_row: Cluster) -> None:
    mine, theirs = ClusterFactory(namespace="team-a"), ClusterFactory(namespace="team-b")
    plan_for(mine, name="ours"), plan_for(theirs, name="theirs")
    viewer = Client()
    viewer.force_login(user_with_role("vic", "viewer", platform="local", namespace="team-a"))
    section = viewer.get("/drills/").content.decode().split('id="drill-plans"')[1]
    assert "ours" in section and "theirs" not in section


def test_plans_come_a_page_at_a_time_with_the_failing_ones_on_the_first(
        client: Client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    from restores.selectors.drill_overview import PLANS_PER_PAGE

    now = timezone.now()
    clusters = [ClusterFactory(name=f"c{i:02d}") for i in range(PLANS_PER_PAGE + 5)]
    plans = [plan_for(c, name=f"p{i:02d}") for i, c in enumerate(clusters)]
    for cluster, plan in zip(clusters, plans, strict=True):
        sealed_run(cluster, plan=plan, at=now - dt.timedelta(hours=2))
    last = plans[-1]  # last by name, but failing: on the first page, first
    sealed_run(clusters[-1], plan=last, at=now - dt.timedelta(hours=1), outcome="failed",
               checks=[CHECK_ORPHANS])
    first = client.get("/drills/").content.decode()
    section = first.split('id="drill-plans"')[1].split("</section>")[0]
    assert section.count('<article class="plan"') == PLANS_PER_PAGE
    assert section.index(f'data-plan="{last.pk}"') < section.index(f'data-plan="{plans[0].pk}"')
    assert f"{len(plans)} plans: 1 failing, 0 overdue · page 1 of 2" in section
    second = client.get("/drills/?plans=2").content.decode()
    rest = second.split('id="drill-plans"')[1].split("</section>")[0]
    assert rest.count('<article class="plan"') == 5 and f'data-plan="{last.pk}"' not in rest
    with django_assert_max_num_queries(16):
        client.get("/drills/")
