"""The audit report's filter: the period (whole days in a time zone), the zone, a platform
and namespace; read from a URL's GET (or a POST of the same fields), a bad value is a
ReportParamError in words, never a server error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q
from django.utils import timezone

from restores import schedules
from restores.parsing import filter_text

DEFAULT_DAYS = 30
MAX_DAYS = 1100  # three years: a yearly test, with the two years before it
BAD_DATE = "“{field}” must be a day written YYYY-MM-DD (e.g. 2026-11-01), not “{value}”."
BAD_ORDER = "The period ends ({last}) before it starts ({first}): swap “from” and “to”."
TOO_LONG = "A report covers at most {days} days; this period has {have}. Shorten it."
OUT_OF_RANGE = "“{field}” must be a day between {low} and {high}, not {value}."
# The days a report may name (far enough from the calendar's ends for any zone's offset).
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(2999, 12, 31)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ReportParamError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _day(data: Any, field: str, default: dt.date) -> dt.date:
    text = filter_text(data.get(field), max_length=40)
    if not text:
        return default
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ReportParamError(BAD_DATE.format(field=field, value=text)) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportParamError(OUT_OF_RANGE.format(field=field, low=FIRST_DAY, high=LAST_DAY,
                                                   value=day))
    return day


@dataclasses.dataclass(frozen=True)
class ReportFilter:
    """Whole days `first`..`last` (both included) in the zone `tz`; the clusters of
    `platform` / `namespace` ("" = every one the viewer may see)."""

    first: dt.date
    last: dt.date
    tz: str = "UTC"
    platform: str = ""
    namespace: str = ""

    @classmethod
    def from_query(cls, data: Any, *, now: dt.datetime | None = None) -> ReportFilter:
        """From a request's GET (or a POST of the same fields); ReportParamError in words."""
        tz = filter_text(data.get("tz"), max_length=64) or "UTC"
        try:
            zone = schedules.zone(tz)
        except schedules.ScheduleError as exc:
            raise ReportParamError(str(exc)) from None
        today = (now or timezone.now()).astimezone(zone).date()
        last = _day(data, "to", today)
        first = _day(data, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
        if last < first:
            raise ReportParamError(BAD_ORDER.format(first=first, last=last))
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise ReportParamError(TOO_LONG.format(days=MAX_DAYS, have=days))
        return cls(first, last, tz, filter_text(data.get("platform"), max_length=32),
                   filter_text(data.get("namespace"), max_length=253))

    @property
    def start(self) -> dt.datetime:
        zone = schedules.zone(self.tz)
        return dt.datetime.combine(self.first, dt.time(), zone).astimezone(dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The instant after the period (midnight after `last`, in the zone)."""
        zone = schedules.zone(self.tz)
        nxt = self.last + dt.timedelta(days=1)
        return dt.datetime.combine(nxt, dt.time(), zone).astimezone(dt.UTC)

    @property
    def scope_text(self) -> str:
        if not self.platform and not self.namespace:
            return "every cluster"
        return f"{self.platform or '*'}/{self.namespace or '*'}"

    def params(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "tz": self.tz,
                "platform": self.platform, "namespace": self.namespace}

    def query(self) -> str:
        return urlencode(self.params())

    def clusters(self, prefix: str = "") -> Q:
        q = Q(**{f"{prefix}platform": self.platform}) if self.platform else Q()
        return q & Q(**{f"{prefix}namespace": self.namespace}) if self.namespace else q
