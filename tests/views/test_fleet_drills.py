"""The Fleet page's drill column: passing with the last pass, overdue, failing, never
drilled; drills' scratch copies hidden unless asked for."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from restores.models import Cluster, DrillRun
from restores.selectors.drill_status import drill_statuses
from tests.factories import ClusterFactory, DrillPlanFactory

pytestmark = pytest.mark.django_db


def _run(cluster: Cluster, outcome: str, ago: dt.timedelta, reason: str = "") -> DrillRun:
    at = timezone.now() - ago
    return DrillRun.objects.create(cluster=cluster, slot_at=at, outcome=outcome, reason=reason,
                                   finished_at=at)


def test_each_cluster_says_whether_its_drills_pass_are_overdue_fail_or_never_ran() -> None:
    old = timezone.now() - dt.timedelta(days=30)
    names = ["ok", "late", "bad", "never", "uncovered"]
    rows = {n: ClusterFactory(name=n) for n in names}
    for name in ("ok", "late", "bad", "never"):
        DrillPlanFactory(name=f"daily {name}", cluster_name=name, schedule="0 3 * * *",
                         created_at=old)
    _run(rows["ok"], "passed", dt.timedelta(hours=3))
    _run(rows["late"], "passed", dt.timedelta(days=5))
    _run(rows["bad"], "passed", dt.timedelta(days=2))
    _run(rows["bad"], "failed", dt.timedelta(hours=2), "orders are there: returned 12")
    statuses = drill_statuses(list(rows.values()))
    got = {n: statuses[rows[n].pk].state for n in names}
    assert got == {"ok": "passing", "late": "overdue", "bad": "failing",
                   "never": "overdue", "uncovered": "never drilled"}
    assert statuses[rows["bad"].pk].words == "last drill failed: orders are there: returned 12"
    assert statuses[rows["uncovered"].pk].words == "no plan covers it"
    assert statuses[rows["late"].pk].last_pass_at is not None


def test_the_fleet_hides_scratch_copies_unless_asked_and_shows_the_drill_column(
        client: Client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    hippo = ClusterFactory(name="hippo")
    ClusterFactory(name="hippo-drill-abc123", drill=True)
    _run(hippo, "passed", dt.timedelta(hours=1))
    page = client.get("/").content.decode()
    assert "hippo-drill-abc123" not in page
    assert 'class="drill drill-passing"' in page
    shown = client.get("/?scratch=1").content.decode()
    assert "hippo-drill-abc123" in shown and "a drill's scratch copy" in shown
    for i in range(30):
        c = ClusterFactory(name=f"more-{i:02d}")
        _run(c, "failed", dt.timedelta(hours=2))
    with django_assert_max_num_queries(14):
        assert client.get("/").status_code == 200


def test_a_scratch_copys_page_offers_no_action_and_a_post_is_refused(client: Client) -> None:
    scratch = ClusterFactory(name="hippo-drill-abc123", drill=True)
    normal = ClusterFactory(name="hippo")
    assert normal.get_absolute_url() + "backup/" in client.get(
        normal.get_absolute_url()).content.decode()  # the control: a cluster's page offers it
    page = client.get(scratch.get_absolute_url()).content.decode()
    url = scratch.get_absolute_url() + "backup/"
    assert 'id="scratch-copy"' in page and url not in page
    answer = client.post(url, {"repo": "repo1", "backup_type": "full"})
    assert answer.status_code == 403
    assert "hippo-drill-abc123 is a drill&#x27;s scratch copy" in answer.content.decode()
