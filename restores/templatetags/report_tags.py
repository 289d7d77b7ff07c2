"""Formatting of the audit report: an instant in the report's zone with UTC beside it, and
measured seconds as a reader and an auditor both want them."""

from __future__ import annotations

import datetime as dt

from django import template

from restores import schedules
from restores.charts import duration_text

register = template.Library()


@register.filter
def zoned(value: dt.datetime | str | None, tz: str = "UTC") -> str:
    """"2026-11-24 10:00 CET (09:00 UTC)"; in UTC, just "2026-11-24 09:00 UTC". An ISO
    text (as JSON keeps an instant) is read first; one without a zone is UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
    if value is None:
        return "–"
    utc = value.astimezone(dt.UTC)
    try:
        zone = schedules.zone(tz or "UTC")
    except schedules.ScheduleError:
        zone = schedules.zone("UTC")
    local = value.astimezone(zone)
    if local.utcoffset() == dt.timedelta(0) and str(zone) in ("UTC", "Etc/UTC"):
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    day = "%Y-%m-%d " if local.date() != utc.date() else ""
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc.strftime(day + '%H:%M')} UTC)"


@register.filter
def seconds(value: float | int | None) -> str:
    """61.5 → "61.5 s"; 4000 → "4000 s (67 min)"; None → "–"."""
    if value is None:
        return "–"
    text = f"{value:g} s" if float(value) == int(value) else f"{value:.1f} s"
    return text if value < 120 else f"{text} ({duration_text(value)})"


@register.filter
def duration(value: dt.timedelta | float | None) -> str:
    """A period or a number of seconds in words: "24 h", "7 d"."""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    return duration_text(value)
