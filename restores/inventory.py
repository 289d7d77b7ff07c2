"""Keeping clusters, repos and backups in step with what the platforms report."""

from __future__ import annotations

import dataclasses
import logging

from django.db import transaction
from django.utils import timezone

from . import platforms
from .models import Backup, Cluster, Repository
from .platforms import base

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SyncResult:
    clusters: int = 0
    backups_added: int = 0
    backups_removed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


def _cluster_fields(status: base.ClusterStatus) -> dict[str, object]:
    return {
        "role": status.role,
        "pg_version": status.pg_version,
        "state": status.state,
        "state_message": status.message,
        "connect_hint": status.connect_hint,
        "present": True,
        "synced_at": timezone.now(),
    }


def _backup_fields(b: base.Backup) -> dict[str, object]:
    return {
        "type": b.type,
        "started_at": b.started_at,
        "stopped_at": b.stopped_at,
        "database_size": b.database_size,
        "delta_size": b.delta_size,
        "repo_size": b.repo_size,
        "repo_delta": b.repo_delta,
        "wal_start": b.wal_start,
        "wal_stop": b.wal_stop,
        "lsn_start": b.lsn_start,
        "lsn_stop": b.lsn_stop,
        "prior_label": b.prior or "",
        "error": b.error,
        "annotations": dict(b.annotations),
    }


@transaction.atomic
def repos_store(*, cluster: Cluster, repos: list[base.RepoInventory]) -> tuple[int, int]:
    """Write a cluster's repos and backups as the platform reported them.

    Returns (backups added, backups removed). A backup the repo no longer holds was expired
    by retention and is removed; a repo the cluster no longer has is removed with its backups.
    """
    now = timezone.now()
    added = removed = 0
    for inv in repos:
        repo, _ = Repository.objects.update_or_create(
            cluster=cluster,
            name=inv.name,
            defaults={
                "kind": inv.kind,
                "status_code": inv.status_code,
                "status_message": inv.status_message,
                "earliest_recovery": inv.window.earliest,
                "latest_recovery": inv.window.latest,
                "latest_wal": inv.window.latest_wal,
                "oldest_wal": inv.window.oldest_wal,
                "backup_running": inv.backup_running,
                "synced_at": now,
            },
        )
        known = set(repo.backups.values_list("label", flat=True))
        reported = {b.label for b in inv.backups}
        new = [
            Backup(repository=repo, label=b.label, **_backup_fields(b))  # type: ignore[arg-type]
            for b in inv.backups
            if b.label not in known
        ]
        Backup.objects.bulk_create(new)
        added += len(new)
        removed += repo.backups.exclude(label__in=reported).delete()[0]
    removed += (
        Backup.objects.filter(repository__cluster=cluster)
        .exclude(repository__name__in=[r.name for r in repos])
        .delete()[0]
    )
    cluster.repositories.exclude(name__in=[r.name for r in repos]).delete()
    return added, removed


def cluster_sync(*, cluster: Cluster) -> SyncResult:
    """Refresh one cluster's status, repos and backups from its platform."""
    platform = platforms.get(cluster.platform)
    ref = base.ClusterRef(cluster.namespace, cluster.name)
    result = SyncResult(clusters=1)
    status = platform.cluster_status(ref)
    Cluster.objects.filter(pk=cluster.pk).update(**_cluster_fields(status))
    try:
        repos = platform.repos(ref)
    except base.PlatformError as exc:
        if status.role != "shutdown":
            raise
        # A shut-down PGO cluster has no pod to ask pgBackRest: keep what we last saw, as
        # platform_sync does, rather than fail the shutdown that just succeeded.
        log.warning("inventory of %s failed: %s", cluster, exc.message)
        result.errors.append(f"{cluster}: {exc.message}")
        return result
    result.backups_added, result.backups_removed = repos_store(cluster=cluster, repos=repos)
    return result


def platform_sync(*, platform_name: str) -> SyncResult:
    """Refresh every cluster of one platform. A cluster that fails is reported, not fatal."""
    platform = platforms.get(platform_name)
    result = SyncResult()
    seen = []
    for status in platform.clusters():
        cluster, _ = Cluster.objects.update_or_create(
            platform=platform_name,
            namespace=status.ref.namespace,
            name=status.ref.name,
            defaults=_cluster_fields(status),
        )
        seen.append(cluster.pk)
        result.clusters += 1
        try:
            added, removed = repos_store(cluster=cluster, repos=platform.repos(status.ref))
        except base.PlatformError as exc:
            # A shut-down cluster may not answer for its repos; keep what we last saw.
            log.warning("inventory of %s failed: %s", cluster, exc.message)
            result.errors.append(f"{cluster}: {exc.message}")
            continue
        result.backups_added += added
        result.backups_removed += removed
    Cluster.objects.filter(platform=platform_name).exclude(pk__in=seen).update(present=False)
    return result
