"""Formatting a DBA reads at a glance: sizes in IEC units, durations, ages, UTC instants."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

if TYPE_CHECKING:
    from restores.models import Backup
    from restores.selectors.drills import DrilledCluster

register = template.Library()


@register.filter
def iec(value: int | None) -> str:
    """Bytes as pgBackRest prints them (its "MB" is MiB): 835910692 → "797.2 MiB"."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


@register.filter
def span(value: dt.timedelta | None) -> str:
    """A duration: 3 s, 4 min 12 s, 2 h 5 min, 3 d 4 h."""
    if value is None:
        return "–"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def ago(value: dt.datetime | None) -> str:
    if value is None:
        return "never"
    return f"{span(timezone.now() - value)} ago"


@register.filter
def utc(value: dt.datetime | str | None) -> str:
    """An instant (or its ISO text, as JSON keeps it), always with its zone:
    "2026-11-24 10:14:03 UTC"."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value is None:
        return "–"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


@register.filter
def pgtime(value: dt.datetime | None) -> str:
    """The instant as pgBackRest's --target gets it: always with a numeric UTC offset."""
    if value is None:
        return ""
    utc = value.astimezone(dt.UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%d %H:%M:%S") + fraction + "+00"


@register.simple_tag
def timeline_svg(timeline: object) -> str:
    """A timeline's window and backup markers as one inline SVG: a long repo has hundreds of
    markers, and building them here is an order of magnitude cheaper than a template loop.
    Positions are SVG attributes, not style attributes, so the page needs no inline style
    under its Content-Security-Policy (the same picture works in a PDF)."""
    left = float(getattr(timeline, "window_left", 0.0))
    width = float(getattr(timeline, "window_width", 0.0))
    parts = ['<svg class="tl-svg" viewBox="0 0 100 34" preserveAspectRatio="none" '
             'aria-hidden="true">']
    if width:
        parts.append(f'<rect class="tl-window" x="{left}" y="10" width="{width}" height="14"/>')
    for m in getattr(timeline, "markers", ()):
        kind, label = escape(m.backup.type), escape(m.backup.label)
        ended = m.backup.stopped_at.astimezone(dt.UTC).isoformat(sep=" ", timespec="seconds")
        x = float(m.left)
        parts.append(f'<line class="tl-backup tl-{kind}" x1="{x}" x2="{x}" y1="4" y2="30">'
                     f"<title>{label} ({kind}) ended {ended}</title></line>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or a number


@register.filter
def clone_origin(params: dict) -> str:
    """Where a clone operation's data comes from, for a cloud source (whose repo no cluster
    page shows): s3://bucket/path (stanza db)."""
    from restores.models.requests import cloud_source

    cloud = (params.get("source") or {}).get("cloud")
    return cloud_source(cloud).describe() if cloud else ""


@register.simple_tag
def backup_rows(backups: Iterable[Backup]) -> str:
    """The rows of a repo's backup table as one HTML string: a poll that finds the backups
    changed re-renders every listed row, and `?backups=all` lists hundreds; building them here
    is several times cheaper than a template loop (templates/restores/cluster.html)."""
    parts = []
    for b in backups:
        label, kind = escape(b.label), escape(b.type)
        flagged, errors = (' class="has-error"', ' <span class="warn" title="page checksum '
                           'errors">errors</span>') if b.error else ("", "")
        parts.append(
            f'<tr data-label="{label}"{flagged}><td><code>{label}</code>{errors}</td>'
            f'<td><span class="btype btype-{kind}">{kind}</span></td>'
            f"<td>{utc(b.started_at)}</td><td>{utc(b.stopped_at)}</td>"
            f"<td>{span(b.duration)}</td><td>{iec(b.database_size)}</td>"
            f'<td title="this backup wrote {iec(b.repo_delta)}">{iec(b.repo_size)}</td>'
            f"<td><code>{escape(b.wal_start)}</code><br><code>{escape(b.wal_stop)}</code></td>"
            "</tr>\n"
        )
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or formatted


@register.simple_tag
def drilled_cluster_rows(clusters: Iterable[DrilledCluster]) -> str:
    """The Drills page's "last successful drill per cluster" rows as one HTML string: every
    drilled cluster is listed (hundreds in a big fleet), and a template loop with a URL
    reversal per row costs several times more (templates/restores/drills.html)."""
    cluster_url = reverse("restores:cluster", kwargs={
        "platform": "P-P", "namespace": "N-N", "name": "C-C"})
    op_url = reverse("restores:operation", kwargs={"operation_id": uuid.UUID(int=0)})
    zero = str(uuid.UUID(int=0))
    parts = []
    for c in clusters:
        who = escape(f"{c.namespace}/{c.name}")
        url = escape(cluster_url.replace("P-P", c.platform).replace("N-N", c.namespace)
                     .replace("C-C", c.name))
        if c.last_ok_id:
            passed = (f'<td><a href="{op_url.replace(zero, str(c.last_ok_id))}">'
                      f"{utc(c.last_ok_at)}</a></td><td>{_seconds(c.last_ok_rto)}</td>"
                      f"<td>{_seconds(c.last_ok_rpo)}</td>")
        else:
            passed = '<td colspan="3"><span class="warn">no drill has passed yet</span></td>'
        parts.append(f'<tr data-cluster="{who}"><td><a href="{url}">{who}</a></td>'
                     f"{passed}</tr>\n")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or formatted


@register.simple_tag
def drilled_cluster_options(clusters: Iterable[DrilledCluster], selected: int | None) -> str:
    """The Drills page's cluster filter: one <option> per drilled cluster."""
    return mark_safe("".join(  # noqa: S308 - escaped
        f'<option value="{c.pk}"{" selected" if c.pk == selected else ""}>'
        f"{escape(c.namespace)}/{escape(c.name)}</option>" for c in clusters))


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value} s"
