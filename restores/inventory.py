"""Keeping clusters, repos and backups in step with what the platforms report.

A platform sync lists every cluster (its status) and asks for the repos and backups of only
those whose backups may have changed (`repos_due`). Those questions run DR_SYNC_CONCURRENCY
at a time on threads that touch no database: the answers are written in the calling thread,
one cluster at a time, as they arrive.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from restores import platforms
from restores.models import Backup, Cluster, Operation, Repository
from restores.platforms import base

log = logging.getLogger(__name__)

# A cluster's repos as the platform answered, or why it could not.
Answer = list[base.RepoInventory] | Exception

STORED_MEANWHILE = "another sync stored the same backups meanwhile; asked again next sync"


@dataclasses.dataclass
class SyncResult:
    clusters: int = 0
    repos_read: int = 0  # clusters whose repos and backups the platform was asked for
    backups_added: int = 0
    backups_removed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


def _status_fields(status: base.ClusterStatus) -> dict[str, object]:
    return {
        "role": status.role,
        "pg_version": status.pg_version,
        "state": status.state,
        "state_message": status.message,
        "connect_hint": status.connect_hint,
        "conditions": [_jsonable(c) for c in status.conditions],
        "warnings": [_jsonable(w) for w in status.warnings],
        "labels": dict(status.labels),
        "present": True,
    }


def _jsonable(note: object) -> dict[str, object]:
    """A platform condition or warning as the Cluster row keeps it (instants as ISO text)."""
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v
            for k, v in dataclasses.asdict(note).items()}  # type: ignore[call-overload]


def _cluster_fields(status: base.ClusterStatus) -> dict[str, object]:
    return {**_status_fields(status), "synced_at": timezone.now()}


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
def repos_store(
    *, cluster: Cluster, repos: list[base.RepoInventory], fingerprint: str | None = None,
    asked_at: dt.datetime | None = None,
) -> tuple[int, int]:
    """Write a cluster's repos and backups as the platform reported them.

    Returns (backups added, backups removed). A backup the repo no longer holds was expired
    by retention and is removed; a repo the cluster no longer has is removed with its backups.
    With `asked_at` (when the platform was asked) and `fingerprint` (the cluster's status
    fingerprint read before asking), the cluster records them for `repos_due`.
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
    if asked_at is not None:
        Cluster.objects.filter(pk=cluster.pk).update(
            repos_synced_at=asked_at, repos_fingerprint=fingerprint or "")
    return added, removed


def cluster_sync(*, cluster: Cluster) -> SyncResult:
    """Refresh one cluster's status, repos and backups from its platform (always asking for
    the repos: a page or an operation wants them fresh)."""
    platform = platforms.get(cluster.platform)
    ref = base.ClusterRef(cluster.namespace, cluster.name)
    result = SyncResult(clusters=1, repos_read=1)
    status = platform.cluster_status(ref)
    Cluster.objects.filter(pk=cluster.pk).update(**_cluster_fields(status))
    asked_at = timezone.now()
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
    result.backups_added, result.backups_removed = repos_store(
        cluster=cluster, repos=repos, fingerprint=status.fingerprint, asked_at=asked_at)
    return result


# How much earlier than DR_REPO_MAX_AGE a cluster's answer may be renewed, as a share of it
# fixed per cluster: a fleet read all at once (the first sync, a mass change) comes due again
# over several syncs instead of in one as long as the first, and stays spread out.
MAX_AGE_SPREAD = 0.5


def repos_max_age(cluster: Cluster) -> dt.timedelta:
    """How old the cluster's stored answer may get: DR_REPO_MAX_AGE, less its spread."""
    # Fibonacci hashing of the id: consecutive ids land evenly over [0, 1).
    share = (cluster.pk * 0x9E3779B1 % 2**32) / 2**32
    return dt.timedelta(seconds=settings.DR_REPO_MAX_AGE * (1 - MAX_AGE_SPREAD * share))


def repos_due(*, cluster: Cluster, status: base.ClusterStatus, busy: bool,
              now: dt.datetime) -> bool:
    """Whether a sync must ask the platform for the cluster's repos and backups: an operation
    is running on it (`busy`), the platform gives no fingerprint, the fingerprint differs from
    the one stored with the last answer (a backup started or ended, a repo changed, a new
    cluster, a failed last read), or that answer is `repos_max_age` old (WAL archiving moves
    the window's end without any status change)."""
    if busy or not status.fingerprint or status.fingerprint != cluster.repos_fingerprint:
        return True
    return cluster.repos_synced_at is None or now - cluster.repos_synced_at >= repos_max_age(
        cluster)


def platform_sync(*, platform_name: str) -> SyncResult:
    """Refresh every cluster of one platform: the status of all, the repos and backups of
    those `repos_due`. A cluster whose repos fail is reported, not fatal: it keeps what was
    last seen and is asked again on the next sync."""
    platform = platforms.get(platform_name)
    listed = platform.clusters()
    now = timezone.now()
    result = SyncResult(clusters=len(listed))
    due = [
        (cluster, status)
        for cluster, status, busy in _clusters_store(platform_name, listed, now=now)
        if repos_due(cluster=cluster, status=status, busy=busy, now=now)
    ]
    for cluster, status, asked_at, answer in _ask_repos(platform, due):
        result.repos_read += 1
        if isinstance(answer, Exception):
            message = answer.message if isinstance(answer, base.PlatformError) else repr(answer)
            log.warning("inventory of %s failed: %s", cluster, message)
            result.errors.append(f"{cluster}: {message}")
            continue
        try:
            added, removed = repos_store(cluster=cluster, repos=answer,
                                         fingerprint=status.fingerprint, asked_at=asked_at)
        except IntegrityError as exc:  # a sync still running from the last beat wrote them
            log.warning("inventory of %s not stored: %s", cluster, exc)
            result.errors.append(f"{cluster}: {STORED_MEANWHILE}")
            continue
        result.backups_added += added
        result.backups_removed += removed
    result.errors.sort()
    return result


# How long after its drill a scratch cluster's name is still known as one (a listing taken
# just before the clean-up finished may still show it).
SCRATCH_MEMORY = dt.timedelta(days=1)


def scratch_names(platform_name: str, *, now: dt.datetime) -> set[tuple[str, str]]:
    """(namespace, name) of every scratch cluster a drill on the platform made or may still
    be making: one query over the drills active or recently finished."""
    rows = (Operation.objects.filter(cluster__platform=platform_name, kind=Operation.Kind.DRILL)
            .filter(Q(status__in=Operation.ACTIVE) | Q(finished_at__gte=now - SCRATCH_MEMORY))
            .values_list("refs__scratch__namespace", "refs__scratch__name"))
    return {(ns, name) for ns, name in rows if name}


def _clusters_store(
    platform_name: str, listed: list[base.ClusterStatus], *, now: dt.datetime
) -> list[tuple[Cluster, base.ClusterStatus, bool]]:
    """Write each listed cluster's status and mark the others absent: one query reads every
    row (with whether an operation is active on it), then only new clusters and changed
    statuses are written one by one, and one UPDATE stamps them all.
    Returns (row, status, busy) per listed cluster."""
    active = Operation.objects.filter(cluster=OuterRef("pk"), status__in=Operation.ACTIVE)
    scratch = scratch_names(platform_name, now=now)
    rows = {
        (c.namespace, c.name): c
        for c in Cluster.objects.filter(platform=platform_name).annotate(busy=Exists(active))
    }
    found = []
    for status in listed:
        fields = {**_status_fields(status),
                  "drill": (status.ref.namespace, status.ref.name) in scratch}
        cluster = rows.get((status.ref.namespace, status.ref.name))
        if cluster is None:
            cluster, _ = Cluster.objects.update_or_create(
                platform=platform_name, namespace=status.ref.namespace, name=status.ref.name,
                defaults={**fields, "synced_at": now},
            )
            busy = False
        else:
            busy = bool(cluster.busy)  # type: ignore[attr-defined]
            if any(getattr(cluster, name) != value for name, value in fields.items()):
                Cluster.objects.filter(pk=cluster.pk).update(**fields)
                for name, value in fields.items():
                    setattr(cluster, name, value)
        found.append((cluster, status, busy))
    seen = [cluster.pk for cluster, _, _ in found]
    Cluster.objects.filter(pk__in=seen).update(synced_at=now)
    # Gone: should it come back (recreated under the same name), its repos are read again.
    Cluster.objects.filter(platform=platform_name).exclude(pk__in=seen).update(
        present=False, repos_fingerprint="")
    return found


def _ask(platform: base.Platform, ref: base.ClusterRef) -> tuple[dt.datetime, Answer]:
    """One cluster's repos and when they were asked for. No database work: it runs on the
    sync's threads."""
    asked_at = timezone.now()
    try:
        return asked_at, platform.repos(ref)
    except Exception as exc:  # reported per cluster; one odd cluster never stops the fleet
        if not isinstance(exc, base.PlatformError):
            log.exception("inventory of %s/%s: unexpected error", ref.namespace, ref.name)
        return asked_at, exc


def _ask_repos(
    platform: base.Platform, due: list[tuple[Cluster, base.ClusterStatus]]
) -> Iterator[tuple[Cluster, base.ClusterStatus, dt.datetime, Answer]]:
    """Ask for the repos of each cluster of `due`, DR_SYNC_CONCURRENCY at a time, and yield
    the answers as they arrive (in the caller's thread, which alone writes them)."""
    workers = min(settings.DR_SYNC_CONCURRENCY, len(due))
    if workers <= 1:
        for cluster, status in due:
            yield cluster, status, *_ask(platform, status.ref)
        return
    with ThreadPoolExecutor(max_workers=workers,
                            thread_name_prefix=f"sync-{platform.name}") as pool:
        asked: dict[Future[tuple[dt.datetime, Answer]], tuple[Cluster, base.ClusterStatus]] = {
            pool.submit(_ask, platform, status.ref): (cluster, status) for cluster, status in due
        }
        try:
            for future in as_completed(asked):
                cluster, status = asked[future]
                yield cluster, status, *future.result()
        finally:  # the caller failed (the database): do not start the rest
            for future in asked:
                future.cancel()
