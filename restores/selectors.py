"""Selectors: the reads behind each page, with a query count that does not grow with the fleet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from django.db.models import (
    Count,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone

from restores.models import Backup, Cluster, Operation, OperationEvent, Repository


class BackupMark(NamedTuple):
    """What the timeline needs of a backup: cheaper than a model instance for long repos."""

    label: str
    type: str
    stopped_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Marker:
    backup: Backup | BackupMark
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


def repo_timeline(repo: Repository, backups: Sequence[Backup | BackupMark]) -> Timeline | None:
    """Place the window [earliest, latest] and each backup's end on a common axis."""
    points = [b.stopped_at for b in backups]
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
    repos = Repository.objects.annotate(last_backup_at=_newest_backup("stopped_at")).order_by(
        "name"
    )
    return Prefetch("repositories", queryset=repos)


def _active_operations() -> Prefetch:
    active = Operation.objects.filter(status__in=Operation.ACTIVE).order_by("-created_at")
    return Prefetch("operations", queryset=active, to_attr="active_operations")


@dataclasses.dataclass(frozen=True)
class FleetRow:
    cluster: Cluster
    url: str
    repos: list[Repository]
    last_backup_at: dt.datetime | None
    active: list[Operation]


@dataclasses.dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    total: int  # clusters matching the filter
    page: int
    pages: int
    query: str
    busy_only: bool


FLEET_PAGE_SIZE = 100


def _fleet_clusters(query: str, busy_only: bool, scope: Q) -> QuerySet[Cluster]:
    clusters = Cluster.objects.filter(scope, present=True)
    if query:
        clusters = clusters.filter(Q(name__icontains=query) | Q(namespace__icontains=query))
    if busy_only:
        clusters = clusters.filter(operations__status__in=Operation.ACTIVE).distinct()
    return clusters.order_by("platform", "namespace", "name")


def fleet_overview(*, query: str = "", busy_only: bool = False, page: int = 1,
                   scope: Q | None = None) -> FleetPage:
    """One page of the fleet (the clusters `scope` lets the user see) with each cluster's
    repo windows, last good backup and operations in flight.

    Four queries whatever the fleet's size: a count, one page of clusters, their repos (with
    the newest backup by subquery), their active operations.
    """
    clusters = _fleet_clusters(query, busy_only, scope if scope is not None else Q())
    total = clusters.count()
    pages = max(1, -(-total // FLEET_PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * FLEET_PAGE_SIZE
    chosen = clusters.prefetch_related(_repos_with_last_backup(), _active_operations())
    base = reverse("restores:fleet")  # one reverse(), not one per row
    rows = []
    for cluster in chosen[start : start + FLEET_PAGE_SIZE]:
        repos = list(cluster.repositories.all())
        stamps = [r.last_backup_at for r in repos if r.last_backup_at]  # type: ignore[attr-defined]
        url = f"{base}clusters/{cluster.platform}/{cluster.namespace}/{cluster.name}/"
        rows.append(
            FleetRow(cluster, url, repos, max(stamps) if stamps else None,
                     cluster.active_operations)  # type: ignore[attr-defined]
        )
    return FleetPage(rows, total, page, pages, query, busy_only)


def fleet_fingerprint() -> str:
    """Changes whenever anything the Fleet page shows may have changed."""
    clusters = Cluster.objects.aggregate(n=Count("id"), synced=Max("synced_at"))
    repos = Repository.objects.aggregate(synced=Max("synced_at"))
    ops = Operation.objects.aggregate(updated=Max("updated_at"), n=Count("id"))
    return _digest([clusters, repos, ops])


def _digest(parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class RepoPanel:
    repo: Repository
    backups: list[Backup]  # the ones listed
    timeline: Timeline | None
    total: int  # all the repo's backups

    @property
    def hidden(self) -> int:
        return self.total - len(self.backups)


# The cluster page lists this many backups per repo, newest first; the timeline places all.
BACKUPS_SHOWN = 30


def cluster_repos(cluster: Cluster, *, all_backups: bool = False) -> list[RepoPanel]:
    """Each repo with its newest backups listed and all of them on the timeline.

    Three queries whatever the number of backups: repos, every backup's timeline fields,
    the listed backups (the newest per repo, by a window function).
    """
    marks: dict[int, list[BackupMark]] = defaultdict(list)
    fields = ("repository_id", "label", "type", "stopped_at")
    for repo_id, *rest in (
        Backup.objects.filter(repository__cluster=cluster).order_by("stopped_at")
        .values_list(*fields)
    ):
        marks[repo_id].append(BackupMark(*rest))
    listed = Backup.objects.filter(repository__cluster=cluster).order_by("-stopped_at")
    if not all_backups:
        listed = listed.annotate(rank=Window(
            RowNumber(), partition_by=F("repository_id"), order_by=F("stopped_at").desc()
        )).filter(rank__lte=BACKUPS_SHOWN)
    by_repo: dict[int, list[Backup]] = defaultdict(list)
    for backup in listed:
        by_repo[backup.repository_id].append(backup)
    return [
        RepoPanel(repo, by_repo[repo.pk], repo_timeline(repo, marks[repo.pk]),
                  len(marks[repo.pk]))
        for repo in cluster.repositories.order_by("name")
    ]


def cluster_operations(cluster: Cluster, *, limit: int = 10) -> list[Operation]:
    return list(
        cluster.operations.select_related("requested_by").order_by("-created_at")[:limit]
    )


@dataclasses.dataclass(frozen=True)
class ClusterFingerprints:
    """One fingerprint per live region of the cluster page, so a poll re-renders only the
    region whose content changed."""

    status: str  # the cluster's role and state, its operations
    backups: str  # its repos (window, running backup, errors) and their backups


# Columns the inventory rewrites on every sync (every DR_INVENTORY_INTERVAL) whether or not
# anything the page shows changed. Every other column counts: one the page comes to show is
# covered without touching the fingerprints.
# Bookkeeping of the inventory, not shown: a sync that finds nothing new re-renders nothing.
_SYNC_STAMPS = frozenset({"synced_at", "repos_synced_at", "repos_fingerprint"})


def _shown(model: type[Cluster] | type[Repository]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.name not in _SYNC_STAMPS]


def cluster_fingerprints(cluster: Cluster) -> ClusterFingerprints:
    """Fingerprints of what the cluster page's live regions show, in two queries.

    `cluster` must have been loaded in this request: its columns are part of the status
    fingerprint. Backups are only ever inserted (new ids) or deleted by the inventory, so a
    repo's count, newest id and sum of ids change whenever its list does.
    """
    ops = cluster.operations.aggregate(n=Count("id"), versions=Sum("version"),
                                       updated=Max("updated_at"))
    repos = list(
        cluster.repositories.order_by("name")
        .annotate(n=Count("backups"), newest=Max("backups__id"), ids=Sum("backups__id"))
        .values_list(*_shown(Repository), "n", "newest", "ids")
    )
    state = [getattr(cluster, name) for name in _shown(Cluster)]
    return ClusterFingerprints(status=_digest([state, ops]), backups=_digest(repos))


def operation_events(op: Operation) -> list[OperationEvent]:
    return list(op.events.order_by("at", "id"))


def age(at: dt.datetime | None) -> dt.timedelta | None:
    return timezone.now() - at if at else None


def last_successful_drill(cluster: Cluster) -> Operation | None:
    """The cluster's newest drill that passed, for its page's drill card."""
    return (cluster.operations.filter(kind=Operation.Kind.DRILL,
                                      status=Operation.Status.SUCCEEDED)
            .order_by("-finished_at").first())


def standbys_of(cluster: Cluster) -> list[Cluster]:
    """Present clusters the console made as standbys of `cluster` that still follow it:
    what stops following when it is shut down."""
    made = Operation.objects.filter(
        kind=Operation.Kind.CREATE_STANDBY, cluster__platform=cluster.platform,
        params__source__namespace=cluster.namespace, params__source__name=cluster.name,
    ).values("cluster_id")
    return list(Cluster.objects.filter(pk__in=made, present=True, role=Cluster.Role.STANDBY)
                .order_by("name"))


@dataclasses.dataclass(frozen=True)
class DowntimeEstimate:
    seconds: float
    basis: str  # how it was reached, in words

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)


# A conservative restore rate for a first estimate, before this cluster has a measured one.
ASSUMED_RESTORE_BYTES_PER_SECOND = 50 * 1024 * 1024
ASSUMED_FIXED_SECONDS = 20.0


def in_place_estimate(cluster: Cluster, newest: Backup | None) -> DowntimeEstimate | None:
    """How long an in-place restore keeps `cluster` down: its last one's measured downtime,
    or the newest backup's size at a conservative restore rate."""
    last = (cluster.operations.filter(kind__in=(Operation.Kind.RESTORE_IN_PLACE,
                                                Operation.Kind.RESTORE_DATABASE),
                                      status=Operation.Status.SUCCEEDED,
                                      result__has_key="downtime_seconds")
            .order_by("-finished_at").values_list("result", "finished_at").first())
    if last:
        try:
            seconds = float(last[0]["downtime_seconds"])
        except (TypeError, ValueError):
            seconds = 0.0
        if seconds > 0:
            when = f"{last[1]:%Y-%m-%d %H:%M} UTC"
            return DowntimeEstimate(seconds, f"the last in-place restore of {cluster.name} "
                                             f"({when}) kept it down that long")
    if newest is None:
        return None
    seconds = ASSUMED_FIXED_SECONDS + newest.database_size / ASSUMED_RESTORE_BYTES_PER_SECOND
    return DowntimeEstimate(seconds, "an estimate from the newest backup's size at 50 MiB/s; "
                                     "WAL replay to a later point adds to it")
