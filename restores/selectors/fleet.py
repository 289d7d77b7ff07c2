"""The Fleet page's reads: one page of the clusters in the user's scope with each repo's
window, the last good backup, the operations in flight and its drill status, in seven queries
whatever the fleet's size; and the fingerprint its refresh compares."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.urls import reverse

from restores.models import Backup, Cluster, DrillRun, Operation, Repository
from restores.selectors.clusters import digest
from restores.selectors.drill_status import DrillStatus, drill_statuses


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
    drill: DrillStatus | None = None


@dataclasses.dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    total: int  # clusters matching the filter
    page: int
    pages: int
    query: str
    busy_only: bool
    with_scratch: bool = False  # drills' scratch copies shown too


FLEET_PAGE_SIZE = 100


def _fleet_clusters(query: str, busy_only: bool, scope: Q,
                    with_scratch: bool) -> QuerySet[Cluster]:
    clusters = Cluster.objects.filter(scope, present=True)
    if not with_scratch:
        clusters = clusters.filter(drill=False)
    if query:
        clusters = clusters.filter(Q(name__icontains=query) | Q(namespace__icontains=query))
    if busy_only:
        clusters = clusters.filter(operations__status__in=Operation.ACTIVE).distinct()
    return clusters.order_by("platform", "namespace", "name")


def fleet_overview(*, query: str = "", busy_only: bool = False, page: int = 1,
                   scope: Q | None = None, with_scratch: bool = False) -> FleetPage:
    """One page of the fleet (the clusters `scope` lets the user see) with each cluster's
    repo windows, last good backup and operations in flight.

    Seven queries whatever the fleet's size: a count, one page of clusters, their repos (with
    the newest backup by subquery), their active operations, their drill status (three).
    Drills' scratch copies are left out unless `with_scratch`.
    """
    clusters = _fleet_clusters(query, busy_only, scope if scope is not None else Q(),
                               with_scratch)
    total = clusters.count()
    pages = max(1, -(-total // FLEET_PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * FLEET_PAGE_SIZE
    chosen = clusters.prefetch_related(_repos_with_last_backup(), _active_operations())
    base = reverse("restores:fleet")  # one reverse(), not one per row
    rows = []
    listed = list(chosen[start : start + FLEET_PAGE_SIZE])
    drills = drill_statuses(listed)
    for cluster in listed:
        repos = list(cluster.repositories.all())
        stamps = [r.last_backup_at for r in repos if r.last_backup_at]  # type: ignore[attr-defined]
        url = f"{base}clusters/{cluster.platform}/{cluster.namespace}/{cluster.name}/"
        rows.append(
            FleetRow(cluster, url, repos, max(stamps) if stamps else None,
                     cluster.active_operations,  # type: ignore[attr-defined]
                     drills.get(cluster.pk))
        )
    return FleetPage(rows, total, page, pages, query, busy_only, with_scratch)


def fleet_fingerprint() -> str:
    """Changes whenever anything the Fleet page shows may have changed."""
    clusters = Cluster.objects.aggregate(n=Count("id"), synced=Max("synced_at"))
    repos = Repository.objects.aggregate(synced=Max("synced_at"))
    ops = Operation.objects.aggregate(updated=Max("updated_at"), n=Count("id"))
    runs = DrillRun.objects.aggregate(n=Count("id"), sealed=Max("sealed_at"))
    return digest([clusters, repos, ops, runs])
