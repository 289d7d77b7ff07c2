"""Selectors of the drill report: every drill run, newest first, and each cluster's last
successful one. The same rows feed the page and the CSV export; the number of queries does
not grow with the fleet or the number of drills."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from restores.models import Cluster, Operation
from restores.parsing import whole_number

PAGE_SIZE = 50
# The outcome filter: each choice and the statuses it stands for.
OUTCOMES: dict[str, tuple[str, ...]] = {
    "succeeded": (Operation.Status.SUCCEEDED,),
    "failed": (Operation.Status.FAILED,),
    "cancelled": (Operation.Status.CANCELLED,),
    "running": Operation.ACTIVE,
}
CSV_HEADER = (
    "requested_at", "cluster", "platform", "repo", "point", "outcome", "rto_seconds",
    "rpo_seconds", "restore_seconds", "backup_set", "checks_passed", "scratch_cluster",
    "requested_by", "finished_at", "reason", "operation",
)


@dataclasses.dataclass(frozen=True)
class DrillFilter:
    cluster: int | None = None  # a Cluster's pk
    outcome: str = ""  # a key of OUTCOMES, or "" for all

    @classmethod
    def from_query(cls, data: Any) -> DrillFilter:
        """From a request's GET: anything unknown is ignored, never an error."""
        outcome = str(data.get("outcome", ""))
        return cls(whole_number(data.get("cluster"), minimum=1),
                   outcome if outcome in OUTCOMES else "")

    def query(self) -> str:
        parts = [f"cluster={self.cluster}"] if self.cluster else []
        return "&".join(parts + ([f"outcome={self.outcome}"] if self.outcome else []))


def drills(selection: DrillFilter, scope: Q | None = None) -> QuerySet[Operation]:
    """Every drill run that matches (of the clusters `scope`, a filter with the prefix
    "cluster__", lets the user see), newest first, with its cluster and requester."""
    ops = (Operation.objects.filter(scope or Q(), kind=Operation.Kind.DRILL)
           .select_related("cluster", "requested_by").order_by("-created_at", "id"))
    if selection.cluster:
        ops = ops.filter(cluster_id=selection.cluster)
    if selection.outcome:
        ops = ops.filter(status__in=OUTCOMES[selection.outcome])
    return ops


class DrilledCluster(NamedTuple):
    """A cluster that has had a drill, and its last successful one (None: none passed)."""

    pk: int
    platform: str
    namespace: str
    name: str
    last_ok_id: uuid.UUID | None = None
    last_ok_at: dt.datetime | None = None
    last_ok_rto: float | None = None
    last_ok_rpo: float | None = None


def drilled_clusters(scope: Q | None = None) -> list[DrilledCluster]:
    """Each cluster that has had a drill (of those `scope` lets the user see), with its last
    successful one: two queries (the clusters; each one's newest passed drill by a window
    over the drills' partial index)."""
    drilled = Operation.objects.filter(kind=Operation.Kind.DRILL).values("cluster_id")
    clusters = (Cluster.objects.filter(scope or Q(), pk__in=drilled).order_by("namespace", "name")
                .values_list("pk", "platform", "namespace", "name"))
    passed = (Operation.objects.filter(kind=Operation.Kind.DRILL,
                                       status=Operation.Status.SUCCEEDED)
              .annotate(rank=Window(RowNumber(), partition_by=F("cluster_id"),
                                    order_by=F("finished_at").desc()))
              .filter(rank=1)
              .values_list("cluster_id", "id", "finished_at", "result__rto_seconds",
                           "result__rpo_seconds"))
    last = {row[0]: row[1:] for row in passed}
    return [DrilledCluster(*c, *last.get(c[0], ())) for c in clusters]


@dataclasses.dataclass(frozen=True)
class DrillPage:
    rows: list[Operation]
    total: int
    page: int
    pages: int
    selection: DrillFilter
    clusters: list[DrilledCluster]


def drill_page(selection: DrillFilter, *, page: int = 1,
               scope: tuple[Q, Q] | None = None) -> DrillPage:
    """One page of the report: a count, the page's drills, the drilled clusters. `scope`:
    the user's filter of operations (prefix "cluster__") and of clusters."""
    op_scope, cluster_scope = scope or (Q(), Q())
    ops = drills(selection, op_scope)
    total = ops.count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = list(ops[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
    return DrillPage(rows, total, page, pages, selection, drilled_clusters(cluster_scope))


def point_text(point: dict[str, Any] | None) -> str:
    point = point or {}
    if point.get("kind") == "time" and point.get("time"):
        at = dt.datetime.fromisoformat(point["time"]).astimezone(dt.UTC)
        return f"{at:%Y-%m-%d %H:%M:%S} UTC"
    return str(point.get("kind") or "latest")


def checks_passed(result: dict[str, Any]) -> str:
    checks = result.get("checks") or []
    return f"{sum(1 for c in checks if c.get('ok'))}/{len(checks)}" if checks else ""


def csv_rows(selection: DrillFilter, *, base_url: str = "",
             scope: Q | None = None) -> Iterator[list[str]]:
    """The report's rows for the CSV export (every page), header first."""
    yield list(CSV_HEADER)
    for op in drills(selection, scope).iterator(chunk_size=500):
        r = op.result or {}
        yield [
            _iso(op.created_at), f"{op.cluster.namespace}/{op.cluster.name}", op.cluster.platform,
            str(op.params.get("repo", "")), point_text(op.params.get("point")),
            str(op.status), _num(r.get("rto_seconds")), _num(r.get("rpo_seconds")),
            _num(r.get("restore_seconds")), str(r.get("backup_set") or op.refs.get(
                "backup_set", "")), checks_passed(r),
            str((op.refs.get("scratch") or {}).get("name", "")),
            _text(op.requested_by.get_username() if op.requested_by else "system"),
            _iso(op.finished_at), _text(op.error_reason), base_url + op.get_absolute_url(),
        ]


def _iso(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds") if at else ""


def _text(value: str) -> str:
    """A cell a spreadsheet will not read as a formula (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def _num(value: Any) -> str:
    return "" if value is None else str(value)
