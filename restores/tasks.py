"""Celery tasks: thin wrappers that pass ids and call one function each."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

import redis
import redis.lock
from celery import shared_task
from django.conf import settings

from restores import inventory, platforms
from restores.models import Backup, Cluster
from restores.models import auditlog as audit
from restores.platforms.base import ClusterRef, PlatformError
from restores.services import approvals, drill_schedule
from restores.steps import loop

log = logging.getLogger(__name__)


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


@shared_task(name="restores.drill_beat", ignore_result=True)
def drill_beat() -> str:
    """Drill plans: queue the slots that came, start what has room, record what missed."""
    lock = redis.Redis.from_url(settings.REDIS_URL).lock(
        "dr-console:drill-beat", blocking=False,
        timeout=max(60, 4 * settings.DR_DRILL_BEAT_INTERVAL))
    try:
        if not lock.acquire():
            return "the previous beat is still running"
    except redis.RedisError as exc:
        log.warning("drill beat: the lock is unavailable (%s)", exc)
        lock = None
    try:
        result = drill_schedule.beat()
    finally:
        if lock is not None:
            with contextlib.suppress(redis.RedisError):
                lock.release()
    log.info("drill beat: %s", result)
    return str(result)


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
