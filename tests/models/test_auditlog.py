"""The audit log: append-only in the database, each entry chained to the one before, and
`audit_verify` naming the first entry someone changed or deleted."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from restores.models import AuditEntry
from restores.models import auditlog as audit
from tests.actions import audit_verify

pytestmark = pytest.mark.django_db


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
