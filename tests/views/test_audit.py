"""The audit page (filters, pages, CSV) and the admin, which shows operations, events and the log
read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import AuditEntry, Cluster
from restores.models import auditlog as audit
from restores.services import backups
from tests.factories import UserFactory, user_with_role

pytestmark = pytest.mark.django_db


def test_the_admin_shows_operations_events_and_the_log_read_only(hippo_row: Cluster) -> None:
    op = backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="full",
                                 user=None)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    entry = AuditEntry.objects.first()
    assert entry is not None
    for url in (f"/admin/restores/operation/{op.pk}/change/",
                f"/admin/restores/auditentry/{entry.pk}/change/"):
        page = client.get(url)
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    changed = client.post(f"/admin/restores/operation/{op.pk}/change/",
                          {"kind": "drill", "status": "succeeded"})
    assert changed.status_code == 403
    assert client.post(f"/admin/restores/operation/{op.pk}/delete/", {"post": "yes"}
                       ).status_code == 403
    assert client.get("/admin/restores/operation/add/").status_code == 403
    op.refresh_from_db()
    assert (op.kind, op.status) == ("backup", "pending")


def test_the_audit_page_filters_pages_and_exports(hippo_row: Cluster) -> None:
    admin_user = user_with_role("root", "admin")
    for _ in range(3):
        audit.audit_record(action=audit.LOGIN, user=admin_user)
    audit.audit_record(action=audit.OPERATION_REQUESTED, cluster=hippo_row, actor_name="alice",
                       result="=cmd|' /C calc'!A0")
    client = Client()
    client.force_login(admin_user)
    page = client.get("/audit/?action=operation").content.decode()
    assert page.count('data-action="operation.requested"') == 1
    assert 'data-action="login"' not in page
    assert client.get("/audit/?user=alice&cluster=hippo").content.decode().count(
        'data-action="') == 1
    assert 'id="audit-head"' in page  # the head to note, for audit_verify --head
    for junk in ("?since=9999-99-99", "?page=²", "?page=99999999999999999999", "?action=x'"):
        assert client.get("/audit/" + junk).status_code == 200
    csv = b"".join(client.get("/audit.csv?user=alice").streaming_content).decode()  # type: ignore[attr-defined]
    assert csv.splitlines()[0].startswith("id,at_utc,actor")
    assert "'=cmd" in csv  # a formula cell is defused
