"""The two-person rule: a destructive operation waits for a second admin.

Where DR_TWO_PERSON_RULE covers a cluster (a list of `platform/namespace` patterns, `*` for
any part), an in-place restore, a database restore, a promotion and a shutdown are created
`awaiting_approval` instead of pending. Another admin of the cluster approves it from its
page (the requester cannot approve their own), and only then does it run; or rejects it with
a reason. A request not approved within DR_APPROVAL_TTL seconds expires. Each decision is an
event on the operation and an entry in the audit log, written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import fnmatch

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from restores.models import Cluster, Operation
from restores.models import auditlog as audit
from restores.models.transitions import Level, Status, operation_transition
from restores.services import access
from restores.services.dispatch import dispatch

User = access.User

APPROVAL_WAITING = (
    "Waiting for a second admin to approve (two-person rule), until {until}. Nothing runs "
    "before that."
)
APPROVED = "Approved by {user}; the operation starts now."
REJECTED = "Rejected by {user}: {reason}"
EXPIRED = "Nobody approved this request within {minutes} minutes: it expired and never ran."
NOT_WAITING = "This operation is {status}: there is nothing to approve or reject."
OWN_REQUEST = (
    "You asked for this operation: a second admin must approve it (two-person rule). You can "
    "reject your own request to withdraw it."
)
REASON_NEEDED = "Say why you reject it: the reason goes to the requester and the audit log."
APPROVAL_EXPIRED = (
    "This request expired at {at} without an approval; it will not run. Ask for it again."
)


def approval_required(kind: str, cluster: Cluster) -> bool:
    """Whether an operation of `kind` on `cluster` waits for a second admin."""
    if kind not in settings.DR_TWO_PERSON_KINDS:
        return False
    here = f"{cluster.platform}/{cluster.namespace}"
    return any(fnmatch.fnmatchcase(here, pattern if "/" in pattern else f"{pattern}/*")
               for pattern in settings.DR_TWO_PERSON_RULE)


def approval_deadline() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=settings.DR_APPROVAL_TTL)


def _locked(op: Operation) -> Operation:
    """The operation as it is now, its row locked until the caller's transaction ends."""
    return (Operation.objects.select_for_update(of=("self",)).select_related("cluster")
            .get(pk=op.pk))


def _expire(op: Operation) -> None:
    minutes = round(settings.DR_APPROVAL_TTL / 60)
    operation_transition(
        op, status=Status.CANCELLED, step="expired", level=Level.WARNING,
        message=EXPIRED.format(minutes=minutes), error_reason=EXPIRED.format(minutes=minutes),
        audit_action=audit.OPERATION_EXPIRED,
    )


def operation_approve(*, operation: Operation, user: User) -> Operation:
    """Approve a waiting operation as a second admin; it is then dispatched. ServiceError
    (from services) when it cannot be approved, AccessDenied without the role."""
    from restores.services.errors import ServiceError

    access.require_cluster(user, "approve", operation.cluster)
    with transaction.atomic():
        op = _locked(operation)
        if op.status != Status.AWAITING_APPROVAL:
            raise ServiceError(NOT_WAITING.format(status=op.get_status_display()))
        if op.requested_by_id is not None and user is not None and op.requested_by_id == user.pk:
            raise ServiceError(OWN_REQUEST)
        expired_at = op.approval_expires_at
        if expired_at and timezone.now() >= expired_at:
            _expire(op)  # committed with this block; the refusal is raised after it
        else:
            expired_at = None
            _approve(op, user)
    if expired_at is not None:
        raise ServiceError(APPROVAL_EXPIRED.format(
            at=f"{expired_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"))
    return op


def _approve(op: Operation, user: User) -> None:
    """Pending again, with who approved it, audited; its first step is sent on commit."""
    name = user.get_username() if user is not None else audit.SYSTEM
    operation_transition(
        op, status=Status.PENDING, step="approved", message=APPROVED.format(user=name),
        approved_by=user, approved_at=timezone.now(),
    )
    audit.audit_record(action=audit.OPERATION_APPROVED, user=user, operation=op,
                       params=audit.operation_params(op))
    dispatch(op)


def operation_reject(*, operation: Operation, user: User, reason: str) -> Operation:
    """Reject a waiting operation (an admin; the requester may withdraw their own)."""
    from restores.services.errors import ServiceError

    reason = reason.strip()
    own = (user is not None and operation.requested_by_id is not None
           and operation.requested_by_id == user.pk)
    if not own:
        access.require_cluster(user, "approve", operation.cluster)
    if not reason:
        raise ServiceError(REASON_NEEDED, field="reason")
    with transaction.atomic():
        op = _locked(operation)
        if op.status != Status.AWAITING_APPROVAL:
            raise ServiceError(NOT_WAITING.format(status=op.get_status_display()))
        name = user.get_username() if user is not None else audit.SYSTEM
        message = REJECTED.format(user=name, reason=reason[:500])
        operation_transition(op, status=Status.CANCELLED, step="rejected", level=Level.WARNING,
                             message=message, error_reason=message, audit_action="")
        audit.audit_record(action=audit.OPERATION_REJECTED, user=user, operation=op,
                           params={**audit.operation_params(op), "reason": reason[:500]})
    return op


def approvals_expire() -> int:
    """End every request whose approval window has passed (the beat's sweep)."""
    due = Operation.objects.filter(status=Status.AWAITING_APPROVAL,
                                   approval_expires_at__lte=timezone.now())
    count = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            op = _locked(Operation(pk=pk))
            if op.status == Status.AWAITING_APPROVAL:
                _expire(op)
                count += 1
    return count
