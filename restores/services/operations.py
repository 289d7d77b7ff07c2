"""Creating an operation: the one place every service ends, with the role check, the
two-person rule, the audit entry and the dispatch of its first step."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction

from restores.models import Cluster, Operation, OperationEvent
from restores.models import auditlog as audit
from restores.services import access, approvals
from restores.services.dispatch import dispatch
from restores.services.errors import ServiceError

User = AbstractBaseUser | AnonymousUser | None

CLUSTER_GONE = "{cluster} is no longer reported by its platform."
CLUSTER_BUSY = (
    "{cluster} already has an operation in progress ({kind}, {status}). Wait for it to "
    "finish or cancel it before starting another."
)


def active_operation(cluster: Cluster) -> Operation | None:
    return cluster.operations.filter(status__in=Operation.ACTIVE, exclusive=True).first()


def busy_error(cluster: Cluster) -> ServiceError:
    active = active_operation(cluster)
    kind = active.get_kind_display() if active else "another operation"
    status = active.get_status_display() if active else "active"
    return ServiceError(CLUSTER_BUSY.format(cluster=cluster.name, kind=kind, status=status))


def operation_create(
    *,
    cluster: Cluster,
    kind: str,
    params: dict[str, Any],
    user: AbstractBaseUser | AnonymousUser | None,
    message: str,
    refs: dict[str, Any] | None = None,
    operation_id: uuid.UUID | None = None,
    exclusive: bool = True,
    actor_name: str | None = None,
) -> Operation:
    """Create an operation and dispatch its first step once the transaction commits; or,
    where the two-person rule covers it, leave it awaiting a second admin's approval.

    Every service ends here, so the role check here holds even for a caller that forgot its
    own (AccessDenied). The request is audited in the same transaction. The partial unique
    constraint refuses a second active exclusive operation on the same cluster, even when
    two requests race past the check in the caller. `operation_id`: an id chosen by the
    caller, when names derived from it must be checked before the create.
    `exclusive=False`: an operation that does not change its cluster (a drill).
    `actor_name`: who asked when no user did (a drill plan's schedule: "schedule:<plan>").
    """
    access.require_cluster(user, access.KIND_ACTION[kind], cluster)
    requested_by = user if user is not None and user.is_authenticated else None
    waits = user is not None and approvals.approval_required(kind, cluster)
    status = Operation.Status.AWAITING_APPROVAL if waits else Operation.Status.PENDING
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                cluster=cluster, kind=kind, params=params, requested_by=requested_by,
                refs=refs or {}, exclusive=exclusive, status=status,
                approval_expires_at=approvals.approval_deadline() if waits else None,
                **({"id": operation_id} if operation_id else {}),
            )
            # Decide the trigger value once, before the first apply: a retried step sends
            # the same value, and the platform recognises it.
            op.refs.setdefault("trigger", str(op.id))
            Operation.objects.filter(pk=op.pk).update(refs=op.refs)
            OperationEvent.objects.create(operation=op, step="requested", message=message)
            if waits:
                assert op.approval_expires_at is not None
                until = f"{op.approval_expires_at:%Y-%m-%d %H:%M:%S} UTC"
                OperationEvent.objects.create(
                    operation=op, step="awaiting_approval", level=OperationEvent.Level.WARNING,
                    message=approvals.APPROVAL_WAITING.format(until=until))
            audit.audit_record(action=audit.OPERATION_REQUESTED, user=user, operation=op,
                               actor_name=actor_name, params=audit.operation_params(op),
                               result=message)
    except IntegrityError:
        raise busy_error(cluster) from None
    if not waits:
        dispatch(op)
    return op


def require_present(cluster: Cluster) -> None:
    """ServiceError when the platform no longer reports the cluster."""
    if not cluster.present:
        raise ServiceError(CLUSTER_GONE.format(cluster=cluster.name))
