"""A DR drill from the browser: open hippo, run a drill, watch it restore a scratch cluster,
verify it and delete it, then find it in the Drills report.

Real Chromium, real Celery worker on Redis, real PostgreSQL and pgBackRest (conftest.py).
Every wait is one of Playwright's auto-retrying `expect`s: no sleeps.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from restores.models import Cluster, Operation
from restores.platforms.base import ClusterRef
from tests.e2e.helpers import OPERATION_URL, log_in

pytestmark = pytest.mark.e2e

# A restore of the demo data, the server's recovery and the checks take seconds; leave room.
DRILL_TIMEOUT_MS = 120_000



def test_a_drill_from_the_cluster_page_succeeds_and_is_in_the_report(
    context, live_server, celery_worker, hippo_row: Cluster, user, e2e_fleet  # type: ignore[no-untyped-def]
) -> None:
    page: Page = context.new_page()
    log_in(page)
    page.goto(live_server.url + hippo_row.get_absolute_url())

    card = page.locator("#drill")
    expect(card.get_by_role("heading", name="Run a drill")).to_be_visible()
    form = page.locator("#drill-form")
    form.get_by_label("Repo", exact=True).select_option("repo1")
    form.get_by_label("Latest: replay all archived WAL").check()
    form.get_by_role("button", name="Run a drill").click()

    expect(page).to_have_url(OPERATION_URL)
    expect(page.locator("#drill-report")).to_be_visible()
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=DRILL_TIMEOUT_MS)
    expect(page.locator("#drill-rto")).to_have_text(re.compile(r"^\d+(\.\d)? s"))
    expect(page.locator("#drill-rpo")).to_have_text(re.compile(r"^\d+(\.\d)? s"))
    expect(page.locator("#drill-checks")).to_contain_text("same system")
    expect(page.locator("#drill-checks .check-failed")).to_have_count(0)
    expect(page.locator("#drill-databases")).to_contain_text("hippo")
    expect(page.locator("#drill-scratch")).to_contain_text("hippo-drill-")

    op = Operation.objects.get(kind=Operation.Kind.DRILL)
    scratch = op.refs["scratch"]["name"]
    assert op.requested_by == user and not op.exclusive
    assert op.result["destroyed_at"] and op.result["scratch"] == scratch
    assert not e2e_fleet.platform.cluster_exists(ClusterRef(hippo_row.namespace, scratch))
    assert "restores.advance_operation" in celery_worker.tail()

    # The report: the run, newest first, and hippo's last successful drill.
    page.get_by_role("link", name="Drills", exact=True).click()
    expect(page.get_by_role("heading", name="Drills", level=1)).to_be_visible()
    row = page.locator(f'#drills tr[data-drill="{op.pk}"]')
    expect(row).to_contain_text("local/hippo")
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text(f"{op.result['rto_seconds']} s")
    expect(page.locator('#drill-clusters tr[data-cluster="local/hippo"]')).to_contain_text(
        f"{op.result['rpo_seconds']} s")
    page.locator("#drill-outcome").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#drills tr[data-drill]")).to_have_count(0)
    expect(page.locator("#drills-csv")).to_have_attribute("href", "/drills.csv?outcome=failed")
