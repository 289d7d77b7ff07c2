"""The cluster page's reads: each repo with its backups and timeline, the operations, the
fingerprints of its live regions, the last passed drill. A constant number of queries
whatever the number of backups."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from django.db.models import Count, F, Max, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from restores.models import Backup, Cluster, Operation, Repository


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


def digest(parts: object) -> str:
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
    return ClusterFingerprints(status=digest([state, ops]), backups=digest(repos))


def age(at: dt.datetime | None) -> dt.timedelta | None:
    return timezone.now() - at if at else None


def last_successful_drill(cluster: Cluster) -> Operation | None:
    """The cluster's newest drill that passed, for its page's drill card."""
    return (cluster.operations.filter(kind=Operation.Kind.DRILL,
                                      status=Operation.Status.SUCCEEDED)
            .order_by("-finished_at").first())


def clone_sources(scope: Q) -> QuerySet[Cluster]:
    """The clusters a clone may start from: present, with a backup, within `scope` (the
    user's, from services.access)."""
    return Cluster.objects.filter(
        scope, present=True, repositories__backups__isnull=False,
    ).distinct().order_by("namespace", "name")
