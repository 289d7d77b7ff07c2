"""The console runs: log in, open hippo, back it up, watch it succeed, see the new backup.

Real Chromium, real Celery worker on Redis, real PostgreSQL and pgBackRest (conftest.py).
Every wait is one of Playwright's auto-retrying `expect`s: no sleeps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from restores.models import Backup, Cluster, Operation
from restores.platforms.pgbackrest import OPERATION_ANNOTATION
from restores.services.operations import CLUSTER_BUSY
from tests.e2e.helpers import OPERATION_URL, log_in

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshot-fleet.png"
# A real pgBackRest backup of the demo data takes seconds; leave room for a slow machine.
BACKUP_TIMEOUT_MS = 120_000
INCR_LABEL = re.compile(r"\d{8}-\d{6}F_\d{8}-\d{6}I")




def test_backup_now_runs_and_lists_the_new_backup_live(
    context, live_server, celery_worker, hippo_row: Cluster, user, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    cluster_url = live_server.url + hippo_row.get_absolute_url()
    backups_before = Backup.objects.filter(repository__cluster=hippo_row, repository__name="repo1")
    known = backups_before.count()
    assert known >= 1, "the fleet fixture takes a first full backup"

    page = context.new_page()
    log_in(page)
    row = page.locator('#fleet tr[data-cluster="hippo"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("primary")
    row.get_by_role("link", name="hippo").click()
    expect(page).to_have_url(cluster_url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("hippo")

    # A second tab on the same cluster page, opened before the backup and never reloaded.
    watcher = context.new_page()
    watcher.goto(cluster_url)
    watched_rows = watcher.locator("#repo-repo1 tr[data-label]")
    expect(watched_rows).to_have_count(known)
    watcher.evaluate("window.__e2eNotReloaded = true")

    form = page.locator("#backup-form")
    form.get_by_label("Type", exact=True).select_option("incr")
    form.get_by_label("Repo", exact=True).select_option("repo1")
    form.get_by_role("button", name="Back up now").click()

    expect(page).to_have_url(OPERATION_URL)
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=BACKUP_TIMEOUT_MS)
    expect(page.locator("#result-label")).to_have_text(INCR_LABEL)
    label = page.locator("#result-label").inner_text()
    # The command the platform ran is on the page, as the operation page promises.
    expect(page.locator("pre.command").first).to_contain_text("pgbackrest")
    expect(page.locator("pre.command").first).to_contain_text("--type=incr")

    # The watcher's htmx poll swaps the new backup in without a reload.
    new_row = watcher.locator(f'#repo-repo1 tr[data-label="{label}"]')
    expect(new_row).to_be_visible()
    expect(new_row.locator("td").nth(1)).to_have_text("incr")
    expect(watched_rows).to_have_count(known + 1)
    expect(watcher.locator("#operations")).to_contain_text("succeeded")
    assert watcher.evaluate("window.__e2eNotReloaded") is True
    assert watcher.url == cluster_url

    op = Operation.objects.get()
    assert op.status == Operation.Status.SUCCEEDED
    assert page.url.endswith(op.get_absolute_url())
    assert op.requested_by == user
    assert op.params == {"repo": "repo1", "type": "incr"}
    assert op.result["label"] == label
    backup = Backup.objects.get(repository__cluster=hippo_row, repository__name="repo1",
                                label=label)
    assert backup.type == Backup.Type.INCR
    assert backup.annotations == {OPERATION_ANNOTATION: op.refs["trigger"]}
    # The steps ran in the worker process (nothing else could: no beat, no eager mode).
    assert "restores.advance_operation" in celery_worker.tail()

    # The fleet page, as the README shows it. Regenerate docs/ with DR_UPDATE_SCREENSHOT=1;
    # otherwise the screenshot goes to a temporary directory so a test run never edits the
    # checkout.
    page.goto("/")
    expect(row).to_be_visible()
    expect(row.locator("td.in-flight")).to_have_text("–")
    expect(row.locator("td.drill-status .drill")).to_have_text("never drilled")
    target = SCREENSHOT if os.getenv("DR_UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_a_backup_is_refused_on_the_form_while_the_cluster_is_busy(
    context, live_server, celery_worker, hippo_row: Cluster, user  # type: ignore[no-untyped-def]
) -> None:
    # An operation in flight, made directly: racing a real one would make this flaky. Nothing
    # dispatches it, so the worker leaves it pending.
    Operation.objects.create(
        cluster=hippo_row, kind=Operation.Kind.BACKUP, params={"repo": "repo1", "type": "full"},
        status=Operation.Status.PENDING, exclusive=True,
    )
    cluster_url = live_server.url + hippo_row.get_absolute_url()

    page = context.new_page()
    log_in(page)
    page.goto(cluster_url)
    form = page.locator("#backup-form")
    form.get_by_label("Type", exact=True).select_option("full")
    form.get_by_role("button", name="Back up now").click()

    message = CLUSTER_BUSY.format(cluster="hippo", kind="backup", status="pending")
    error = page.locator("#backup-form p.error")
    expect(error).to_have_text(message)
    expect(error).to_have_attribute("role", "alert")
    expect(page).to_have_url(cluster_url)
    assert Operation.objects.count() == 1
    assert Operation.objects.get().status == Operation.Status.PENDING
