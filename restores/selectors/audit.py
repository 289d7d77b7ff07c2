"""Selectors of the Audit page: entries filtered by user, cluster, action and time, newest
first, paged; the same rows feed the CSV export. A constant number of queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet

from restores.models import AuditEntry
from restores.models import auditlog as audit
from restores.parsing import filter_text

PAGE_SIZE = 100
CSV_HEADER = ("id", "at_utc", "actor", "address", "action", "platform", "namespace",
              "cluster", "operation", "params", "result", "hash", "prev_hash")


def _day(text: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text or "").strip()[:10])
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    user: str = ""  # an actor's name, exactly
    cluster: str = ""  # a cluster's name (any namespace), exactly
    action: str = ""  # one of audit.ACTIONS, or a prefix such as "operation"
    since: dt.date | None = None  # UTC days, inclusive
    until: dt.date | None = None

    @classmethod
    def from_query(cls, data: Any) -> AuditFilter:
        """From a request's GET: anything unknown is ignored, never an error."""
        action = filter_text(data.get("action"), max_length=48)
        known = action in audit.ACTIONS or any(a.startswith(f"{action}.") for a in audit.ACTIONS)
        return cls(user=filter_text(data.get("user"), max_length=150),
                   cluster=filter_text(data.get("cluster"), max_length=63),
                   action=action if known else "",
                   since=_day(data.get("since")), until=_day(data.get("until")))

    def query(self) -> str:
        parts = {"user": self.user, "cluster": self.cluster, "action": self.action,
                 "since": self.since.isoformat() if self.since else "",
                 "until": self.until.isoformat() if self.until else ""}
        return urlencode({k: v for k, v in parts.items() if v})


def entries(selection: AuditFilter, scope: Q) -> QuerySet[AuditEntry]:
    rows = AuditEntry.objects.filter(scope)
    if selection.user:
        rows = rows.filter(actor_name=selection.user)
    if selection.cluster:
        rows = rows.filter(cluster_name=selection.cluster)
    if selection.action in audit.ACTIONS:
        rows = rows.filter(action=selection.action)
    elif selection.action:
        rows = rows.filter(action__startswith=f"{selection.action}.")
    if selection.since:
        rows = rows.filter(at__gte=dt.datetime.combine(selection.since, dt.time(), dt.UTC))
    if selection.until:
        end = dt.datetime.combine(selection.until + dt.timedelta(days=1), dt.time(), dt.UTC)
        rows = rows.filter(at__lt=end)
    return rows.order_by("-id")


@dataclasses.dataclass(frozen=True)
class AuditPage:
    rows: list[AuditEntry]
    total: int
    page: int
    pages: int
    selection: AuditFilter
    head_id: int
    head_hash: str


def audit_page(selection: AuditFilter, *, scope: Q, page: int = 1) -> AuditPage:
    rows = entries(selection, scope)
    total = rows.count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    listed = list(rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
    head_id, head_hash = audit.chain_head()
    return AuditPage(listed, total, page, pages, selection, head_id, head_hash)


def csv_rows(selection: AuditFilter, *, scope: Q) -> Iterator[list[str]]:
    yield list(CSV_HEADER)
    for e in entries(selection, scope).iterator(chunk_size=1000):
        yield [str(e.pk), e.at.astimezone(dt.UTC).isoformat(), _text(e.actor_name),
               e.address, e.action, e.platform, e.namespace, _text(e.cluster_name),
               str(e.operation_id or ""), _text(json.dumps(e.params, sort_keys=True)),
               _text(e.result), e.hash, e.prev_hash]


def _text(value: str) -> str:
    """A cell a spreadsheet will not read as a formula (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
