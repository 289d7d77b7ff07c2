"""The audit log: what is recorded, that it is append-only, and that `audit_verify` names
the first entry someone changed or deleted in the database."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client
from django.utils import timezone

from restores.models import AuditEntry, Cluster, Operation
from restores.models import auditlog as audit
from restores.services import backups
from restores.steps import loop
from tests.actions import audit_verify
from tests.factories import UserFactory, user_with_role
from tests.fakes import FakePlatform

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def _tamper(sql: str, params: list[object]) -> None:
    """What someone with the database's superuser can do: switch the append-only trigger off
    for their session, and edit a row."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def _entries(n: int) -> list[AuditEntry]:
    return [audit.audit_record(action=audit.SETTINGS_CHANGED, params={"n": i}, result="x")
            for i in range(n)]


def test_each_entry_is_chained_to_the_one_before() -> None:
    first, second, third = _entries(3)
    assert first.prev_hash == audit.GENESIS
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    assert audit.entry_hash(first.hash, second) == second.hash
    code, out, _ = audit_verify()
    assert code == 0 and f"3 entries, head {third.hash}" in out


def test_a_changed_result_is_named_by_audit_verify() -> None:
    entries = _entries(4)
    _tamper("UPDATE restores_auditentry SET result = %s WHERE id = %s", ["y", entries[2].pk])
    code, _, err = audit_verify()
    assert code == 1
    assert f"BROKEN at entry #{entries[2].pk}: entry #{entries[2].pk} was changed" in err
    assert "(2 entries verified before it)" in err


def test_a_deleted_entry_breaks_the_link_of_the_next_one() -> None:
    entries = _entries(4)
    _tamper("DELETE FROM restores_auditentry WHERE id = %s", [entries[1].pk])
    code, _, err = audit_verify()
    assert code == 1
    assert f"entry #{entries[2].pk} does not follow entry #{entries[0].pk}" in err


def test_a_changed_and_rehashed_entry_is_caught_by_the_next_link() -> None:
    entries = _entries(3)
    forged = AuditEntry.objects.get(pk=entries[1].pk)
    forged.result = "nothing happened"
    new_hash = audit.entry_hash(forged.prev_hash, forged)
    _tamper("UPDATE restores_auditentry SET result = %s, hash = %s WHERE id = %s",
            ["nothing happened", new_hash, forged.pk])
    code, _, err = audit_verify()
    assert code == 1 and f"entry #{entries[2].pk} does not follow entry #{forged.pk}" in err


def test_entries_deleted_from_the_end_are_caught_against_a_noted_head() -> None:
    entries = _entries(3)
    head = entries[-1].hash
    _tamper("DELETE FROM restores_auditentry WHERE id = %s", [entries[-1].pk])
    assert audit_verify()[0] == 0  # the chain that is left is consistent...
    code, _, err = audit_verify("--head", head)
    assert code == 1 and "no longer holds the head" in err  # ...but the head is gone


def test_the_database_refuses_to_change_or_delete_an_entry() -> None:
    (entry,) = _entries(1)
    for sql in ("UPDATE restores_auditentry SET result = 'y' WHERE id = %s",
                "DELETE FROM restores_auditentry WHERE id = %s"):
        with pytest.raises(ProgrammingError, match="the audit log is append-only"), \
                transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).result == "x"


def test_an_operation_is_audited_when_requested_and_when_it_ends(
    fake: FakePlatform, hippo_row: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    user = user_with_role("alice", "operator")
    with audit.request_address("10.1.2.3"):
        op = backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="full",
                                     user=user)
    requested = AuditEntry.objects.get(action=audit.OPERATION_REQUESTED)
    assert (requested.actor_name, requested.address, requested.operation_id) == (
        "alice", "10.1.2.3", op.pk)
    assert requested.params["params"] == {"repo": "repo1", "type": "full"}
    assert (requested.platform, requested.namespace, requested.cluster_name) == (
        "local", "local", "hippo")
    loop.advance(str(op.id))
    fake.finish(op.refs["trigger"], ok=False, message="[082] the repo is full")
    Operation.objects.filter(pk=op.pk).update(next_check_at=timezone.now())
    with caplog.at_level(logging.WARNING, logger="restores.models.transitions"):
        loop.advance(str(op.id))
    failed = AuditEntry.objects.get(action=audit.OPERATION_FAILED)
    assert failed.actor_name == "system" and "[082] the repo is full" in failed.result
    assert failed.params["requested_by"] == "alice"
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning and str(op.pk) in warning[0].getMessage()
    assert "backup of local/local/hippo" in warning[0].getMessage()
    assert "[082] the repo is full" in warning[0].getMessage()
    assert audit_verify()[0] == 0


def test_logins_and_failed_logins_are_audited_without_the_password() -> None:
    UserFactory(username="dba", password=PASSWORD)
    client = Client(REMOTE_ADDR="192.0.2.7")
    client.post("/login/", {"username": "dba", "password": "guessed wrong"})
    client.post("/login/", {"username": "dba", "password": PASSWORD})
    client.post("/logout/")
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "actor_name",
                                                               "address"))
    assert rows == [("login.failed", "dba", "192.0.2.7"), ("login", "dba", "192.0.2.7"),
                    ("logout", "dba", "192.0.2.7")]
    everything = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert "guessed wrong" not in everything and PASSWORD not in everything


def test_credentials_never_enter_an_entry() -> None:
    entry = audit.audit_record(action=audit.OPERATION_REQUESTED, params={
        "cloud": {"global_options": [["repo1-s3-key", "AKIAEXAMPLE"],
                                     ["repo1-s3-uri-style", "path"]]},
        "repo1-cipher-pass": "hunter2"})
    text = json.dumps(AuditEntry.objects.get(pk=entry.pk).params)
    assert "AKIAEXAMPLE" not in text and "hunter2" not in text
    assert '["repo1-s3-uri-style", "path"]' in text


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


def test_a_change_to_the_consoles_security_settings_is_audited(settings) -> None:  # type: ignore[no-untyped-def]
    from restores import tasks

    tasks.sweep_operations()
    first = AuditEntry.objects.get(action=audit.SETTINGS_CHANGED)
    assert first.result == "first recorded" and first.params["before"] is None
    tasks.sweep_operations()
    assert AuditEntry.objects.filter(action=audit.SETTINGS_CHANGED).count() == 1  # unchanged
    settings.DR_TWO_PERSON_RULE = ["*"]
    tasks.sweep_operations()
    latest = AuditEntry.objects.filter(action=audit.SETTINGS_CHANGED).latest("id")
    assert latest.params["changed"] == ["DR_TWO_PERSON_RULE"]
    assert latest.params["before"]["DR_TWO_PERSON_RULE"] == []
    assert latest.params["settings"]["DR_TWO_PERSON_RULE"] == ["*"]
