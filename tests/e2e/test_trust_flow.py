"""Who may do what, in a real browser on the local platform with a real worker: an operator
cannot restore in place (403, nothing changes); with the two-person rule on, an admin's
in-place restore waits until a second admin approves it, then runs for real; the Audit page
shows the request, the approval and the result. And the pages keep working under the
Content-Security-Policy, which does block an inline style."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from restores.models import AuditEntry, Cluster, Operation
from restores.platforms.base import ClusterRef
from tests.e2e.conftest import E2EFleet
from tests.e2e.helpers import OPERATION_URL, log_in, make_user

pytestmark = pytest.mark.e2e

# A real in-place restore of the demo data: a backup of the current state, the delta
# restore, WAL replay and the checks after it.
RESTORE_TIMEOUT_MS = 180_000


def test_an_operator_cannot_restore_in_place(context, live_server, hippo_row: Cluster) -> None:  # type: ignore[no-untyped-def]
    make_user("olga", "operator")
    page = context.new_page()
    log_in(page, "olga")
    page.goto(hippo_row.get_absolute_url())
    expect(page.locator("#backup-form")).to_be_visible()  # an operator backs up...
    expect(page.locator("#restore-link")).to_have_count(0)  # ...but sees no in-place restore
    expect(page.locator("#shutdown-link")).to_have_count(0)
    answer = page.goto(hippo_row.get_absolute_url() + "restore/")
    assert answer is not None and answer.status == 403
    expect(page.locator("#denied-message")).to_contain_text(
        "You may not restore in place in local/local: that needs the admin role there, and "
        "you have the operator role.")
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    forced = page.request.post(hippo_row.get_absolute_url() + "restore/", headers={
        "X-CSRFToken": token, "Referer": live_server.url},
        form={"kind": "latest", "confirm": "hippo", "safety_backup": "on"})
    assert forced.status == 403
    assert not Operation.objects.filter(cluster=hippo_row).exclude(kind="backup").exists()
    assert AuditEntry.objects.filter(action="access.denied", actor_name="olga").count() == 2


def _restore_from_the_form(page: Page, hippo_row: Cluster) -> None:
    page.goto(hippo_row.get_absolute_url())
    page.locator("#restore-link").click()
    expect(page.get_by_role("heading", name="Restore hippo in place")).to_be_visible()
    expect(page.locator("#restore-review")).to_contain_text("goes down")
    page.get_by_label(re.compile("Latest: replay all archived WAL")).check()
    expect(page.get_by_label(re.compile("First take a backup of the current state"))
           ).to_be_checked()
    page.get_by_label("Type hippo to confirm").fill("hippo")
    page.get_by_role("button", name="Restore hippo in place").click()


def test_with_the_two_person_rule_a_second_admin_approves_and_it_runs(
    browser, context, live_server, celery_worker, hippo_row: Cluster, e2e_fleet: E2EFleet,  # type: ignore[no-untyped-def]
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.DR_TWO_PERSON_RULE = ["*"]
    make_user("alice")
    make_user("bob")
    rows_before = e2e_fleet.platform.sql(ref_of(hippo_row), "select count(*) from users",
                                         database="hippo")

    alice = context.new_page()
    log_in(alice, "alice")
    _restore_from_the_form(alice, hippo_row)
    expect(alice).to_have_url(OPERATION_URL)
    expect(alice.locator("#op-status")).to_have_text("awaiting approval")
    expect(alice.locator("#approval")).to_contain_text("Waiting for a second admin")
    expect(alice.locator("#approve-button")).to_have_count(0)  # not her own
    op = Operation.objects.get(kind="restore_in_place")
    assert op.status == "awaiting_approval" and op.started_at is None

    bob_context = browser.new_context(base_url=live_server.url)
    try:
        bob = bob_context.new_page()
        log_in(bob, "bob")
        bob.goto(op.get_absolute_url())
        bob.get_by_role("button", name="Approve and run it").click()
        expect(bob.locator("#approved")).to_contain_text("Approved by bob")
        expect(bob.locator("#op-status")).to_have_text("succeeded", timeout=RESTORE_TIMEOUT_MS)
        expect(bob.locator("#safety-backup")).to_be_visible()
        # alice's page, never reloaded, follows it too
        expect(alice.locator("#op-status")).to_have_text("succeeded")

        bob.goto("/audit/?cluster=hippo")
        table = bob.locator("#audit")
        for action, who in (("operation.requested", "alice"), ("operation.approved", "bob"),
                            ("operation.succeeded", "system")):
            expect(table.locator(f'tr[data-action="{action}"]').first).to_contain_text(who)
    finally:
        bob_context.close()
    op.refresh_from_db()
    assert op.approved_by is not None and op.approved_by.username == "bob"
    assert op.refs["safety_backup"]
    assert e2e_fleet.platform.sql(ref_of(hippo_row), "select count(*) from users",
                                  database="hippo") == rows_before


def ref_of(hippo_row: Cluster) -> ClusterRef:
    return ClusterRef(hippo_row.namespace, hippo_row.name)


def test_the_policy_does_block_an_inline_style(browser, live_server, hippo_row: Cluster) -> None:  # type: ignore[no-untyped-def]
    """The control for the CSP check every browser test makes: an injected <style> is
    refused, and the refusal is what the tests listen for."""
    make_user("carl", "viewer")
    ctx = browser.new_context(base_url=live_server.url)
    try:
        page = ctx.new_page()
        seen: list[str] = []
        page.on("console", lambda msg: seen.append(msg.text))
        log_in(page, "carl")
        assert not [m for m in seen if "Content Security Policy" in m]
        with page.expect_console_message(
                lambda m: "Content Security Policy" in m.text) as refused:
            page.evaluate("() => { const s = document.createElement('style');"
                          " s.textContent = 'body { color: red }'; document.head.append(s); }")
        assert "style-src 'self'" in refused.value.text
        expect(page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    finally:
        ctx.close()
