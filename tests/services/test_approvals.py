"""The two-person rule: where it is on, a destructive operation waits for a second admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from restores import tasks
from restores.models import AuditEntry, Cluster, Operation
from restores.models import auditlog as audit
from restores.services import approvals, backups, errors
from tests.actions import request_shutdown
from tests.factories import user_with_role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_person_rule")]


def test_the_rule_covers_the_configured_scopes_and_kinds(hippo_row: Cluster, settings) -> None:  # type: ignore[no-untyped-def]
    assert approvals.approval_required("shutdown", hippo_row)
    assert approvals.approval_required("restore_in_place", hippo_row)
    assert not approvals.approval_required("backup", hippo_row)
    assert not approvals.approval_required("start", hippo_row)
    settings.DR_TWO_PERSON_RULE = ["kubernetes/prod"]
    assert not approvals.approval_required("shutdown", hippo_row)
    settings.DR_TWO_PERSON_RULE = ["*"]
    assert approvals.approval_required("promote", hippo_row)
    settings.DR_TWO_PERSON_RULE = []
    assert not approvals.approval_required("shutdown", hippo_row)


def test_a_request_waits_and_starts_nothing_until_another_admin_approves(
    hippo_row: Cluster, alice, bob, dispatched: list[str],  # type: ignore[no-untyped-def]
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        op = request_shutdown(hippo_row, alice)
    assert op.status == Operation.Status.AWAITING_APPROVAL and dispatched == []
    assert tasks.sweep_operations() == 0  # the sweep does not start it either
    assert op.approval_expires_at is not None
    with pytest.raises(errors.ServiceError) as own:
        approvals.operation_approve(operation=op, user=alice)
    assert own.value.message == approvals.OWN_REQUEST
    operator = user_with_role("carol", "operator")
    with pytest.raises(approvals.access.AccessDenied):
        approvals.operation_approve(operation=op, user=operator)
    with django_capture_on_commit_callbacks(execute=True):
        approved = approvals.operation_approve(operation=op, user=bob)
    assert approved.status == Operation.Status.PENDING and approved.approved_by == bob
    assert dispatched == [str(op.pk)]
    steps = list(op.events.order_by("at", "id").values_list("step", flat=True))
    assert steps == ["requested", "awaiting_approval", "approved"]
    actions = list(AuditEntry.objects.filter(operation_id=op.pk).order_by("id")
                   .values_list("action", "actor_name"))
    assert actions == [("operation.requested", "alice"), ("operation.approved", "bob")]
    with pytest.raises(errors.ServiceError, match="nothing to approve"):
        approvals.operation_approve(operation=op, user=bob)


def test_a_waiting_request_holds_the_cluster_and_a_rejection_keeps_its_reason(
    hippo_row: Cluster, alice, bob  # type: ignore[no-untyped-def]
) -> None:
    op = request_shutdown(hippo_row, alice)
    with pytest.raises(errors.ServiceError, match="already has an operation in progress"):
        backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="full", user=bob)
    with pytest.raises(errors.ServiceError) as no_reason:
        approvals.operation_reject(operation=op, user=bob, reason="  ")
    assert no_reason.value.field == "reason"
    rejected = approvals.operation_reject(operation=op, user=bob,
                                          reason="not during the payroll run")
    assert rejected.status == Operation.Status.CANCELLED
    assert rejected.error_reason == "Rejected by bob: not during the payroll run"
    entry = AuditEntry.objects.get(action=audit.OPERATION_REJECTED)
    assert (entry.actor_name, entry.params["reason"]) == ("bob", "not during the payroll run")
    backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="full", user=bob)


def test_the_requester_may_withdraw_but_not_approve(hippo_row: Cluster, alice) -> None:  # type: ignore[no-untyped-def]
    op = request_shutdown(hippo_row, alice)
    withdrawn = approvals.operation_reject(operation=op, user=alice, reason="wrong cluster")
    assert withdrawn.status == Operation.Status.CANCELLED


def test_an_approval_window_expires(hippo_row: Cluster, alice, bob) -> None:  # type: ignore[no-untyped-def]
    op = request_shutdown(hippo_row, alice)
    Operation.objects.filter(pk=op.pk).update(
        approval_expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(errors.ServiceError, match="expired at"):
        approvals.operation_approve(operation=op, user=bob)
    op.refresh_from_db()
    assert op.status == Operation.Status.CANCELLED and op.step == "expired"
    other = request_shutdown(hippo_row, alice)
    Operation.objects.filter(pk=other.pk).update(
        approval_expires_at=timezone.now() - dt.timedelta(seconds=1))
    tasks.sweep_operations()
    other.refresh_from_db()
    assert other.status == Operation.Status.CANCELLED
    assert AuditEntry.objects.filter(action=audit.OPERATION_EXPIRED).count() == 2
