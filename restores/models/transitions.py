"""Every change to an operation goes through here: a conditional UPDATE, then an event.

The UPDATE only matches when the operation is still in the state the caller saw, so running
the same step twice (a redelivered message, two workers) records one transition, not two.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from restores.models import auditlog
from restores.models.operations import Operation, OperationEvent

Status = Operation.Status
Level = OperationEvent.Level
log = logging.getLogger(__name__)

# The audit entry each end of an operation writes (an operation that never ran, cancelled or
# expired, is recorded by the service that ended it).
TERMINAL_ACTIONS = {Status.SUCCEEDED: auditlog.OPERATION_SUCCEEDED,
                    Status.FAILED: auditlog.OPERATION_FAILED,
                    Status.CANCELLED: auditlog.OPERATION_CANCELLED}


def operation_transition(
    op: Operation,
    *,
    status: str,
    step: str,
    message: str,
    level: str = Level.INFO,
    command: str = "",
    detail: str = "",
    next_check_in: dt.timedelta | None = None,
    audit_action: str | None = None,
    **fields: Any,
) -> bool:
    """Move `op` from the status and step it was loaded with to `status`/`step`.

    Returns False (and writes nothing) when another run got there first. On success the
    in-memory `op` is updated too. Reaching an end (succeeded, failed, cancelled) also writes
    its audit entry, in the same transaction, unless `audit_action` is "" (the caller
    records it with its own actor); a failure is logged at WARNING.
    """
    now = timezone.now()
    values: dict[str, Any] = {"status": status, "step": step, "updated_at": now, **fields}
    if status == Status.RUNNING and op.started_at is None:
        values.setdefault("started_at", now)
    if status in Operation.TERMINAL:
        values.setdefault("finished_at", now)
        values["next_check_at"] = None
    elif next_check_in is not None:
        values["next_check_at"] = now + next_check_in
    with transaction.atomic():
        updated = Operation.objects.filter(
            pk=op.pk, status=op.status, step=op.step, version=op.version
        ).update(version=F("version") + 1, **values)
        if not updated:
            return False
        OperationEvent.objects.create(
            operation=op, at=now, step=step, level=level, message=message,
            command=command, detail=detail,
        )
        for key, value in values.items():
            setattr(op, key, value)
        op.version += 1
        action = TERMINAL_ACTIONS.get(status) if audit_action is None else audit_action
        if action:
            auditlog.audit_record(action=action, operation=op, params=auditlog.operation_params(op),
                               result=message[:2000])
    if status == Status.FAILED:
        log.warning("operation %s failed: %s of %s/%s/%s: %s", op.pk, op.kind,
                    op.cluster.platform, op.cluster.namespace, op.cluster.name, message)
    return True


def operation_observe(
    op: Operation, *, message: str, detail: str = "", level: str = Level.INFO
) -> bool:
    """Record what the platform reports, once per distinct message, without a transition."""
    last = op.events.order_by("-at", "-id").values_list("message", flat=True).first()
    if last == message:
        return False
    now = timezone.now()
    with transaction.atomic():
        updated = Operation.objects.filter(pk=op.pk, version=op.version).update(
            version=F("version") + 1, updated_at=now
        )
        if not updated:
            return False
        OperationEvent.objects.create(
            operation=op, at=now, step=op.step, level=level, message=message, detail=detail
        )
    op.version += 1
    op.updated_at = now
    return True


def operation_schedule(op: Operation, *, delay: dt.timedelta) -> None:
    """When the next step is due. Not a change anyone sees: no event, no version bump."""
    op.next_check_at = timezone.now() + delay
    Operation.objects.filter(pk=op.pk, status__in=Operation.ACTIVE).update(
        next_check_at=op.next_check_at
    )


def operation_lease(op: Operation, *, seconds: int) -> bool:
    """Take the right to run one step now; False when another worker holds it."""
    now = timezone.now()
    return bool(
        Operation.objects.filter(pk=op.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + dt.timedelta(seconds=seconds))
    )


def operation_release(op: Operation) -> None:
    Operation.objects.filter(pk=op.pk).update(lease_until=None)
