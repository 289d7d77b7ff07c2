"""What is audited: an operation when requested and when it ends, logins and failed logins,
changes to the console's security settings; never a credential."""

from __future__ import annotations

import json
import logging

import pytest
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
