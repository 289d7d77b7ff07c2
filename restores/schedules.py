"""Drill schedules: cron in a time zone (croniter), the slots between two instants, a
schedule's period. Pure: instants in, instants out (aware, UTC).

A slot is an instant the schedule names. A plan's run of a slot may start until the slot's
window closes: DR_DRILL_START_WINDOW after it, or the next slot if that comes first.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections.abc import Iterator

from croniter import croniter

# More slots than this between two beats (a beat stopped for months, a schedule of every
# minute): the newest ones are kept, the rest are said in one sentence.
MAX_SLOTS = 50


class ScheduleError(ValueError):
    pass


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{name} is not a time zone (e.g. UTC, Europe/Paris).") from None


def schedule_clean(cron: str, tz: str) -> str:
    """The cron expression as kept (5 fields), or ScheduleError in words."""
    cron = " ".join(cron.split())
    zone(tz)
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ScheduleError(f"{cron or 'An empty schedule'} is not a cron schedule of five "
                            "fields: minute hour day-of-month month day-of-week "
                            "(e.g. 0 3 * * 1 for Mondays at 03:00).")
    return cron


def _iter(cron: str, tz: str, start: dt.datetime, *, backwards: bool = False
          ) -> Iterator[dt.datetime]:
    it = croniter(cron, start.astimezone(zone(tz)))
    step = it.get_prev if backwards else it.get_next
    while True:
        yield step(dt.datetime).astimezone(dt.UTC)


def slots_between(cron: str, tz: str, after: dt.datetime, until: dt.datetime
                  ) -> tuple[list[dt.datetime], int]:
    """The slots in (after, until], oldest first, at most MAX_SLOTS of the newest; and how
    many older ones were left out."""
    found: list[dt.datetime] = []
    skipped = 0
    for at in _iter(cron, tz, after):
        if at > until:
            break
        found.append(at)
        if len(found) > MAX_SLOTS:
            found.pop(0)
            skipped += 1
            if skipped > 100_000:  # a minute's schedule, decades behind: stop counting
                break
    return found, skipped


def next_slot(cron: str, tz: str, after: dt.datetime) -> dt.datetime:
    return next(_iter(cron, tz, after))


def previous_slot(cron: str, tz: str, before: dt.datetime) -> dt.datetime:
    return next(_iter(cron, tz, before, backwards=True))


def period(cron: str, tz: str, now: dt.datetime) -> dt.timedelta:
    """How long the schedule leaves between runs around `now`: the longest of the gaps
    between its last three slots (a schedule of weekdays has a period of three days)."""
    back = _iter(cron, tz, now, backwards=True)
    slots = [next(back) for _ in range(4)]
    return max(a - b for a, b in itertools.pairwise(slots))


def window_end(cron: str, tz: str, slot: dt.datetime, window: dt.timedelta) -> dt.datetime:
    """The latest a run of `slot` may start."""
    return min(slot + window, next_slot(cron, tz, slot))


def describe(cron: str, tz: str) -> str:
    return f"{cron} ({tz})"


class Periods:
    """Schedules' periods around one instant, each worked out once per schedule and zone
    (a page or a beat asks for the same few schedules of many plans)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at
        self._known: dict[tuple[str, str], dt.timedelta | None] = {}

    def of(self, cron: str, tz: str) -> dt.timedelta | None:
        """The period, or None for a schedule that cannot be read (stored by hand)."""
        key = (cron, tz)
        if key not in self._known:
            try:
                self._known[key] = period(cron, tz, self.at)
            except (ScheduleError, ValueError, KeyError):
                self._known[key] = None
        return self._known[key]
