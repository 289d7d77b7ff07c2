"""Services: the rules, and every write a user's request causes.

Each raises `ServiceError` with a message meant for the person at the keyboard, naming the
form field it belongs to. Messages are module constants so tests assert on them.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction

from . import access, approvals, audit
from .models import Backup, Cluster, Operation, OperationEvent
from .platforms.base import BACKUP_TYPES

CLUSTER_BUSY = (
    "{cluster} already has an operation in progress ({kind}, {status}). Wait for it to "
    "finish or cancel it before starting another."
)
CLUSTER_GONE = "{cluster} is no longer reported by its platform; it cannot be backed up."
BACKUP_TYPE_UNKNOWN = "Choose a backup type: full, diff or incr."
BACKUP_REPO_UNKNOWN = "{cluster} has no repo named {repo}."
BACKUP_NEEDS_FULL = (
    "{repo} has no full backup yet, so a {type} backup has nothing to build on. "
    "Take a full backup first."
)
BACKUP_ON_STANDBY = (
    "{cluster} is a standby: backups run on the primary of the repo's stanza. Back up the "
    "primary cluster instead."
)
BACKUP_ON_SHUTDOWN = "{cluster} is shut down: start it before taking a backup."


class ServiceError(Exception):
    """A rule said no. `field` names the form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _active_operation(cluster: Cluster) -> Operation | None:
    return cluster.operations.filter(status__in=Operation.ACTIVE, exclusive=True).first()


def _busy_error(cluster: Cluster) -> ServiceError:
    active = _active_operation(cluster)
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
) -> Operation:
    """Create an operation and dispatch its first step once the transaction commits; or,
    where the two-person rule covers it, leave it awaiting a second admin's approval.

    Every service ends here, so the role check here holds even for a caller that forgot its
    own (AccessDenied). The request is audited in the same transaction. The partial unique
    constraint refuses a second active exclusive operation on the same cluster, even when
    two requests race past the check in the caller. `operation_id`: an id chosen by the
    caller, when names derived from it must be checked before the create.
    `exclusive=False`: an operation that does not change its cluster (a drill).
    """
    from .tasks import dispatch

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
                               params=audit.operation_params(op), result=message)
    except IntegrityError:
        raise _busy_error(cluster) from None
    if not waits:
        dispatch(op)
    return op


def backup_request(
    *,
    cluster: Cluster,
    repo_name: str,
    backup_type: str,
    user: AbstractBaseUser | AnonymousUser | None,
) -> Operation:
    """Ask for a manual backup of `cluster` into `repo_name`."""
    access.require_cluster(user, "backup", cluster)
    if backup_type not in BACKUP_TYPES:
        raise ServiceError(BACKUP_TYPE_UNKNOWN, field="backup_type")
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None:
        raise ServiceError(
            BACKUP_REPO_UNKNOWN.format(cluster=cluster.name, repo=repo_name), field="repo"
        )
    if not cluster.present:
        raise ServiceError(CLUSTER_GONE.format(cluster=cluster.name))
    if cluster.role == Cluster.Role.STANDBY:
        raise ServiceError(BACKUP_ON_STANDBY.format(cluster=cluster.name))
    if cluster.role == Cluster.Role.SHUTDOWN:
        raise ServiceError(BACKUP_ON_SHUTDOWN.format(cluster=cluster.name))
    if backup_type != "full" and not repo.backups.filter(type="full").exists():
        raise ServiceError(
            BACKUP_NEEDS_FULL.format(repo=repo.name, type=backup_type), field="backup_type"
        )
    if _active_operation(cluster):
        raise _busy_error(cluster)
    return operation_create(
        cluster=cluster,
        kind=Operation.Kind.BACKUP,
        params={"repo": repo.name, "type": backup_type},
        user=user,
        message=(
            f"{Backup.Type(backup_type).label.capitalize()} backup of {cluster.name} to "
            f"{repo.name} requested."
        ),
    )
