"""rules.check_point: can a repo reach this point, and from which backup set."""

from __future__ import annotations

import datetime as dt

import pytest

from restores import rules
from restores.platforms.targets import RestoreTarget

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=3)
FULL = rules.BackupPoint("20261124-090000F", T0, "0/3000050")
INCR = rules.BackupPoint("20261124-090000F_20261124-100000I", T0 + dt.timedelta(hours=1),
                         "0/9000050")
BAD = rules.BackupPoint("20261124-103000F", T0 + dt.timedelta(minutes=90), "0/A000050",
                        error=True)
# As pgbackrest.recoverable_window reports it: one second after the oldest backup's stop.
WINDOW = rules.Window("repo1", T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(hours=2),
                      "00000001000000000000000C", [FULL, INCR, BAD])


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def utc(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.mark.parametrize(
    ("point", "field", "message"),
    [
        (RestoreTarget(kind="time", time=at(0)), "time", rules.TIME_BEFORE_WINDOW.format(
            when=utc(at(0)), repo="repo1", earliest=utc(T0 + dt.timedelta(seconds=1)))),
        (RestoreTarget(kind="time", time=at(121)), "time", rules.TIME_AFTER_WINDOW.format(
            when=utc(at(121)), repo="repo1", latest=utc(at(120)))),
        (RestoreTarget(kind="time", time=NOW + dt.timedelta(seconds=1)), "time",
         rules.TIME_IN_FUTURE.format(when=utc(NOW + dt.timedelta(seconds=1)))),
        (RestoreTarget(kind="set", label="20261124-080000F"), "label",
         rules.SET_UNKNOWN.format(repo="repo1", label="20261124-080000F")),
        (RestoreTarget(kind="set", label=BAD.label), "label",
         rules.SET_HAS_ERRORS.format(label=BAD.label)),
        (RestoreTarget(kind="time", time=at(30), label=INCR.label), "time",
         rules.TARGET_BEFORE_SET_END.format(label=INCR.label, end=utc(INCR.stopped_at))),
        (RestoreTarget(kind="lsn", lsn="0/2000000"), "lsn", rules.LSN_BEFORE_WINDOW.format(
            lsn="0/2000000", repo="repo1", earliest="0/3000050")),
        (RestoreTarget(kind="lsn", lsn="0/D000001"), "lsn", rules.LSN_AFTER_WINDOW.format(
            lsn="0/D000001", repo="repo1", segment="00000001000000000000000C",
            latest="0/D000000")),
        (RestoreTarget(kind="lsn", lsn="0/4000000", label=INCR.label), "lsn",
         rules.TARGET_BEFORE_SET_END.format(label=INCR.label, end="LSN 0/9000050")),
    ],
)
def test_it_refuses_points_outside_the_window(point: RestoreTarget, field: str,
                                              message: str) -> None:
    verdict = rules.check_point(point, WINDOW, now=NOW)
    assert verdict.errors == ((field, message),)
    assert not verdict.ok


@pytest.mark.parametrize(
    ("point", "base", "suggestion"),
    [
        (RestoreTarget(kind="latest"), BAD.label, ""),
        (RestoreTarget(kind="time", time=at(0) + dt.timedelta(seconds=1)), FULL.label,
         rules.SUGGEST_IMMEDIATE.format(seconds=1, label=FULL.label)),
        (RestoreTarget(kind="time", time=at(30)), FULL.label, ""),
        (RestoreTarget(kind="time", time=at(60) + dt.timedelta(seconds=8)), INCR.label,
         rules.SUGGEST_IMMEDIATE.format(seconds=8, label=INCR.label)),
        (RestoreTarget(kind="time", time=at(60) + dt.timedelta(seconds=11)), INCR.label, ""),
        # The bad full is skipped: the newest usable set before the target is the incr.
        (RestoreTarget(kind="time", time=at(100)), INCR.label, ""),
        (RestoreTarget(kind="time", time=at(120)), INCR.label, ""),
        (RestoreTarget(kind="set", label=FULL.label), FULL.label, ""),
        (RestoreTarget(kind="immediate", label=INCR.label), INCR.label, ""),
        (RestoreTarget(kind="lsn", lsn="0/5000000"), FULL.label, ""),
        (RestoreTarget(kind="lsn", lsn="0/CFFFFFF"), INCR.label, ""),
    ],
)
def test_it_accepts_reachable_points_and_names_the_base_set(
    point: RestoreTarget, base: str, suggestion: str
) -> None:
    verdict = rules.check_point(point, WINDOW, now=NOW)
    assert verdict.ok
    assert verdict.suggestion == suggestion
    assert verdict.base == (base if point.kind != "latest" else INCR.label)


def test_latest_starts_from_the_newest_usable_set() -> None:
    assert rules.check_point(RestoreTarget(), WINDOW, now=NOW).base == INCR.label


@pytest.mark.parametrize(
    ("point", "warning"),
    [
        (RestoreTarget(kind="xid", xid=1234), rules.XID_UNCHECKED.format(xid=1234)),
        (RestoreTarget(kind="name", name="before-upgrade"),
         rules.NAME_UNCHECKED.format(name="before-upgrade")),
    ],
)
def test_it_warns_about_points_it_cannot_check(point: RestoreTarget, warning: str) -> None:
    verdict = rules.check_point(point, WINDOW, now=NOW)
    assert verdict.ok and verdict.warnings == (warning,)


def test_an_empty_repo_reaches_nothing() -> None:
    empty = rules.Window("repo2", None, None, "", [BAD])
    verdict = rules.check_point(RestoreTarget(), empty, now=NOW)
    assert verdict.errors == (("kind", rules.NO_WINDOW.format(repo="repo2")),)


@pytest.mark.parametrize(
    ("segment", "lsn"),
    [("000000010000000000000001", "0/2000000"), ("0000000300000000000000F6", "0/F7000000"),
     ("0000000100000001000000FF", "2/0")],
)
def test_a_wal_segment_ends_at_the_lsn_where_the_next_one_begins(segment: str, lsn: str) -> None:
    assert rules.lsn_text(rules.segment_end_lsn(segment)) == lsn
