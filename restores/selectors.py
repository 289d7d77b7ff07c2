"""Selectors: the reads behind each page, with a query count that does not grow with the fleet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from .models import Backup, Cluster, Operation, OperationEvent, Repository


@dataclasses.dataclass(frozen=True)
class Marker:
    backup: Backup
    left: float  # percent of the timeline's width


@dataclasses.dataclass(frozen=True)
class Timeline:
    """A repo's recoverable window and its backups, placed on one horizontal axis."""

    start: dt.datetime
    end: dt.datetime
    window_left: float
    window_width: float
    markers: list[Marker]

    @property
    def span(self) -> dt.timedelta:
        return self.end - self.start


def _pct(at: dt.datetime, start: dt.datetime, total: float) -> float:
    return round(100 * max(0.0, min(1.0, (at - start).total_seconds() / total)), 2)


def repo_timeline(repo: Repository, backups: list[Backup]) -> Timeline | None:
    """Place the window [earliest, latest] and each backup's end on a common axis."""
    points = [b.stopped_at for b in backups] + [b.started_at for b in backups]
    points += [t for t in (repo.earliest_recovery, repo.latest_recovery) if t]
    if not points:
        return None
    start, end = min(points), max(points)
    total = max((end - start).total_seconds(), 1.0)
    left = width = 0.0
    if repo.earliest_recovery and repo.latest_recovery:
        left = _pct(repo.earliest_recovery, start, total)
        width = max(_pct(repo.latest_recovery, start, total) - left, 0.5)
    markers = [Marker(b, _pct(b.stopped_at, start, total)) for b in backups]
    return Timeline(start, end, left, width, markers)


def _newest_backup(field: str) -> Subquery:
    newest = Backup.objects.filter(repository=OuterRef("pk"), error=False).order_by("-stopped_at")
    return Subquery(newest.values(field)[:1])


def _repos_with_last_backup() -> Prefetch:
    repos = Repository.objects.annotate(
        last_backup_at=_newest_backup("stopped_at"),
        last_backup_label=_newest_backup("label"),
        last_backup_type=_newest_backup("type"),
    ).order_by("name")
    return Prefetch("repositories", queryset=repos)


def _active_operations() -> Prefetch:
    active = Operation.objects.filter(status__in=Operation.ACTIVE).order_by("-created_at")
    return Prefetch("operations", queryset=active, to_attr="active_operations")


@dataclasses.dataclass(frozen=True)
class FleetRow:
    cluster: Cluster
    repos: list[Repository]
    last_backup_at: dt.datetime | None
    active: list[Operation]


def fleet_overview() -> list[FleetRow]:
    """Every known cluster with its repos' windows, last good backup and operations in flight.

    Three queries whatever the fleet's size: clusters, repos (with their newest backup by
    subquery), active operations.
    """
    clusters = Cluster.objects.filter(present=True).prefetch_related(
        _repos_with_last_backup(), _active_operations()
    )
    rows = []
    for cluster in clusters:
        repos = list(cluster.repositories.all())
        stamps = [r.last_backup_at for r in repos if r.last_backup_at]  # type: ignore[attr-defined]
        rows.append(
            FleetRow(cluster, repos, max(stamps) if stamps else None,
                     cluster.active_operations)  # type: ignore[attr-defined]
        )
    return rows


@dataclasses.dataclass(frozen=True)
class RepoPanel:
    repo: Repository
    backups: list[Backup]
    timeline: Timeline | None


def cluster_repos(cluster: Cluster) -> list[RepoPanel]:
    repos = cluster.repositories.prefetch_related(
        Prefetch("backups", queryset=Backup.objects.order_by("-stopped_at"))
    ).order_by("name")
    panels = []
    for repo in repos:
        backups = list(repo.backups.all())
        panels.append(RepoPanel(repo, backups, repo_timeline(repo, backups)))
    return panels


def cluster_operations(cluster: Cluster, *, limit: int = 10) -> list[Operation]:
    return list(
        cluster.operations.select_related("requested_by").order_by("-created_at")[:limit]
    )


def cluster_fingerprint(cluster: Cluster) -> str:
    """Changes whenever anything the cluster page's live regions show changes."""
    repo = cluster.repositories.order_by("-synced_at").values_list("synced_at", flat=True).first()
    ops = cluster.operations.order_by("-updated_at").values_list("updated_at", "version").first()
    count = Backup.objects.filter(repository__cluster=cluster).count()
    cluster.refresh_from_db(fields=["synced_at", "role", "state"])
    parts = [repo, ops, count, cluster.synced_at, cluster.role, cluster.state]
    text = repr([str(p) for p in parts]).encode()
    return hashlib.sha1(text, usedforsecurity=False).hexdigest()[:16]


def operation_events(op: Operation) -> list[OperationEvent]:
    return list(op.events.order_by("at", "id"))


def age(at: dt.datetime | None) -> dt.timedelta | None:
    return timezone.now() - at if at else None
