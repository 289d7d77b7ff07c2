"""Celery tasks: thin wrappers that pass ids and call one function each."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

import redis
import redis.lock
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from restores import inventory, platforms
from restores.models import Backup, Cluster, Operation, OperationEvent
from restores.models import auditlog as audit
from restores.models.transitions import operation_observe
from restores.platforms.base import ClusterRef, PlatformError
from restores.services import approvals
from restores.steps import loop

log = logging.getLogger(__name__)


BROKER_DOWN = (
    "Queued: the worker cannot be reached right now ({error}). The operation starts when it "
    "can be, within DR_SWEEP_INTERVAL seconds of the broker coming back."
)


def send_quietly(task: Any, *args: Any) -> bool:
    """Send a task, or log why it could not be sent: a request never fails because the
    broker is down (whatever the task does is done again later, by the sweep or a sync)."""
    try:
        task.delay(*args)
    except Exception as exc:  # kombu raises several kinds when the broker is unreachable
        log.warning("could not send %s%r to the broker: %s", task.name, args, exc)
        return False
    return True


def _send_first_step(op_id: str) -> None:
    try:
        advance_operation.delay(op_id)
    except Exception as exc:
        # The operation is committed and pending: the beat's sweep starts it once the broker
        # answers again. Say so on its page instead of failing the request.
        log.warning("operation %s is queued: the broker is unreachable (%s)", op_id, exc)
        op = Operation.objects.filter(pk=op_id).first()
        if op is not None:
            operation_observe(op, message=BROKER_DOWN.format(error=str(exc)[:200]),
                              level=OperationEvent.Level.WARNING)


def dispatch(op: Operation) -> None:
    """Run the operation's first step once the transaction that created it commits."""
    op_id = str(op.id)
    transaction.on_commit(lambda: _send_first_step(op_id))


# acks_late: a step is idempotent, so a message redelivered after a worker died is safe.
@shared_task(name="restores.advance_operation", acks_late=True, ignore_result=True)
def advance_operation(operation_id: str) -> None:
    delay = loop.advance(operation_id)
    if delay is not None:
        advance_operation.apply_async((operation_id,), countdown=delay.total_seconds())


@shared_task(name="restores.sweep_operations", ignore_result=True)
def sweep_operations() -> int:
    """Resume operations a lost message, a dead worker or a Redis restart left behind."""
    grace = dt.timedelta(seconds=settings.DR_SWEEP_INTERVAL)
    audit.settings_audit()
    approvals.approvals_expire()
    due = loop.due_operations(grace=grace)
    for op_id in due:
        advance_operation.delay(op_id)
    return len(due)


def sync_lock(platform_name: str) -> redis.lock.Lock:
    """One inventory sync of a platform at a time, across workers: a first sync of a large
    fleet can outlast the beat's interval, and a second one would read the same clusters
    again. The lock expires by itself (a worker killed mid-sync frees it)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    return client.lock(f"dr-console:sync:{platform_name}", blocking=False,
                       timeout=max(60, 10 * settings.DR_INVENTORY_INTERVAL))


@shared_task(name="restores.sync_inventory", ignore_result=True)
def sync_inventory() -> None:
    for name in platforms.enabled():
        lock = sync_lock(name)
        try:
            if not lock.acquire():
                log.info("inventory %s: the previous sync is still running; skipped", name)
                continue
        except redis.RedisError as exc:  # no lock to be had: sync anyway, as before locks
            log.warning("inventory %s: the sync lock is unavailable (%s)", name, exc)
            lock = None
        try:
            result = inventory.platform_sync(platform_name=name)
        except Exception:
            log.exception("inventory sync of the %s platform failed", name)
            continue
        finally:
            if lock is not None:
                with contextlib.suppress(redis.RedisError):  # expired meanwhile: nothing held
                    lock.release()
        log.info("inventory %s: %s", name, result)


# How fresh the repos and backups of a cluster must be before a page asks for a new sync.
SYNC_FRESH = dt.timedelta(seconds=5)


def cluster_sync_soon(cluster: Cluster | None) -> None:
    """Ask for a fresh inventory of `cluster` unless its repos were read a moment ago (the
    fleet sync writes every status but reads repos only when due: synced_at is no guide)."""
    if cluster is None:
        return
    if cluster.repos_synced_at and timezone.now() - cluster.repos_synced_at < SYNC_FRESH:
        return
    send_quietly(sync_cluster, cluster.pk)


@shared_task(name="restores.sync_cluster", ignore_result=True)
def sync_cluster(cluster_id: int) -> None:
    cluster = Cluster.objects.filter(pk=cluster_id, present=True).first()
    if cluster is None:
        return
    try:
        inventory.cluster_sync(cluster=cluster)
    except PlatformError as exc:
        log.warning("inventory of %s failed: %s", cluster, exc.message)


@shared_task(name="restores.backup_databases_fetch", ignore_result=True)
def backup_databases_fetch(backup_id: int) -> None:
    """Read which databases a backup set holds (for --db-include), once."""
    backup = Backup.objects.select_related("repository__cluster").filter(
        pk=backup_id, databases__isnull=True
    ).first()
    if backup is None:
        return
    cluster = backup.repository.cluster
    platform = platforms.get(cluster.platform)
    names = platform.backup_databases(
        ClusterRef(cluster.namespace, cluster.name), repo=backup.repository.name,
        label=backup.label,
    )
    Backup.objects.filter(pk=backup.pk, databases__isnull=True).update(databases=names)
