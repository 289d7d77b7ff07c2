"""How a request hands work to the worker: Celery tasks sent by name once the transaction that
recorded the work commits, so the services never import the tasks (tasks → steps →
platforms is the worker's side). A request never fails because the broker is down: the
sweep and the inventory sync do later what could not be sent now.

`send` is the one seam the tests patch.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import current_app
from django.db import transaction
from django.utils import timezone

from restores.models import Backup, Cluster, Operation, OperationEvent
from restores.models.transitions import operation_observe

log = logging.getLogger(__name__)

ADVANCE = "restores.advance_operation"
SYNC_CLUSTER = "restores.sync_cluster"
READ_SET_DATABASES = "restores.backup_databases_fetch"

BROKER_DOWN = (
    "Queued: the worker cannot be reached right now ({error}). The operation starts when it "
    "can be, within DR_SWEEP_INTERVAL seconds of the broker coming back."
)
# How fresh the repos and backups of a cluster must be before a page asks for a new sync.
SYNC_FRESH = dt.timedelta(seconds=5)


def send(task: str, *args: object) -> None:
    current_app.send_task(task, args=args)


def send_quietly(task: str, *args: object) -> bool:
    """Send a task, or log why it could not be sent."""
    try:
        send(task, *args)
    except Exception as exc:  # kombu raises several kinds when the broker is unreachable
        log.warning("could not send %s%r to the broker: %s", task, args, exc)
        return False
    return True


def _send_first_step(op_id: str) -> None:
    if send_quietly(ADVANCE, op_id):
        return
    # The operation is committed and pending: the beat's sweep starts it once the broker
    # answers again. Say so on its page instead of failing the request.
    op = Operation.objects.filter(pk=op_id).first()
    if op is not None:
        operation_observe(op, message=BROKER_DOWN.format(error="the broker does not answer"),
                          level=OperationEvent.Level.WARNING)


def dispatch(op: Operation) -> None:
    """Run the operation's first step once the transaction that created it commits."""
    op_id = str(op.id)
    transaction.on_commit(lambda: _send_first_step(op_id))


def cluster_sync_soon(cluster: Cluster | None) -> None:
    """Ask for a fresh inventory of `cluster` unless its repos were read a moment ago (the
    fleet sync writes every status but reads repos only when due: synced_at is no guide)."""
    if cluster is None:
        return
    if cluster.repos_synced_at and timezone.now() - cluster.repos_synced_at < SYNC_FRESH:
        return
    send_quietly(SYNC_CLUSTER, cluster.pk)


def set_databases_soon(backup: Backup | None) -> None:
    """Ask for the databases a backup set holds (for --db-include) if they were never read."""
    if backup is not None and backup.databases is None:
        send_quietly(READ_SET_DATABASES, backup.pk)
