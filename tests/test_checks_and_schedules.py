"""The checks a plan may hold and how a result is judged; cron schedules in a time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from restores import checks, schedules

UTC = dt.UTC


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "sql", "query": "select 1; drop table x", "expected": "1"},
     "Check 1 (sql): one statement, without ';'"),
    ({"kind": "sql", "query": "select 1", "expected": "1", "compare": "~"},
     "Check 1 (sql): compare with one of"),
    ({"kind": "sql", "query": "select 1"}, "Check 1 (sql): say what the query must return."),
    ({"kind": "not_empty", "tables": ["users; drop"]}, "users; drop is not a table name"),
    ({"kind": "newest_row", "table": "users", "column": "a b"},
     "name the table and its time column"),
    ({"kind": "reconcile", "tables": ["users"], "tolerance": -1}, "0 or more"),
    ({"kind": "shell"}, "the kind must be one of sql, not_empty"),
    ({"kind": "amcheck", "database": "a b"}, "a b is not a database name"),
])
def test_a_check_that_cannot_hold_says_why(spec: dict, message: str) -> None:
    with pytest.raises(checks.CheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        checks.check_clean(spec)


def test_a_reconciliation_needs_a_latest_drill() -> None:
    spec = [{"kind": "reconcile", "tables": ["users"]}]
    assert checks.checks_clean(spec, point="latest")[0]["tolerance"] == 0
    with pytest.raises(checks.CheckError, match="needs a drill of the latest point"):
        checks.checks_clean(spec, point="random")


def test_tables_are_quoted_as_identifiers() -> None:
    assert checks.count_sql("sales.orders") == 'select count(*) from "sales"."orders"'
    assert checks.newest_sql("orders", "created_at") == (
        'select max("created_at") from "orders"')


@pytest.mark.parametrize(("found", "how", "expected", "ok"), [
    ("1204", ">=", "1000", True), ("999", ">=", "1000", False), ("10", ">", "9.5", True),
    ("2026-11-24 09:00:00+00", ">=", "2026-11-24T08:00:00+00:00", True),
    ("2026-11-24 07:00:00+00", ">=", "2026-11-24T08:00:00+00:00", False),
    ("ok", "=", "ok", True), ("ok", ">=", "ok", False), (None, ">=", "0", False),
])
def test_results_compare_as_numbers_instants_or_text(found: str | None, how: str,
                                                     expected: str, ok: bool) -> None:
    assert checks.compare(found, how, expected) is ok


def test_target_minus_rpo_or_a_duration_is_worked_out() -> None:
    target = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert checks.expected_value("target - rpo", target=target, rpo_objective=900) == (
        "2026-11-24T08:45:00+00:00")
    assert checks.expected_value("target - 2 hours", target=target, rpo_objective=None) == (
        "2026-11-24T07:00:00+00:00")
    assert checks.expected_value("1000", target=None, rpo_objective=None) == "1000"
    with pytest.raises(checks.CheckError, match="needs the plan's RPO objective"):
        checks.expected_value("target - rpo", target=target, rpo_objective=None)


def test_a_schedule_is_five_cron_fields_in_a_real_zone() -> None:
    assert schedules.schedule_clean(" 0  3 * *  1 ", "Europe/Paris") == "0 3 * * 1"
    with pytest.raises(schedules.ScheduleError, match="is not a cron schedule of five fields"):
        schedules.schedule_clean("0 3 * *", "UTC")
    with pytest.raises(schedules.ScheduleError, match="Mars/Olympus is not a time zone"):
        schedules.schedule_clean("0 3 * * *", "Mars/Olympus")


def test_slots_follow_the_plans_zone_across_a_dst_change() -> None:
    # 03:00 in Paris is 02:00 UTC in winter and 01:00 UTC in summer (DST began 2026-03-29).
    slots, skipped = schedules.slots_between(
        "0 3 * * *", "Europe/Paris", dt.datetime(2026, 3, 28, 0, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    assert slots == [dt.datetime(2026, 3, 28, 2, 0, tzinfo=UTC),
                     dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                     dt.datetime(2026, 3, 30, 1, 0, tzinfo=UTC)]
    assert skipped == 0


def test_a_long_stop_keeps_the_newest_slots_and_counts_the_rest() -> None:
    slots, skipped = schedules.slots_between(
        "0 * * * *", "UTC", dt.datetime(2026, 11, 1, tzinfo=UTC),
        dt.datetime(2026, 11, 11, tzinfo=UTC))
    assert len(slots) == schedules.MAX_SLOTS and skipped == 240 - schedules.MAX_SLOTS
    assert slots[-1] == dt.datetime(2026, 11, 11, tzinfo=UTC)


def test_a_period_is_the_longest_gap_between_recent_slots_and_a_window_ends_at_the_next() -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
    assert schedules.period("0 3 * * 1-5", "UTC", now) == dt.timedelta(days=3)
    assert schedules.period("0 3 1 * *", "UTC", now) == dt.timedelta(days=31)
    slot = dt.datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert schedules.window_end("*/10 * * * *", "UTC", slot, dt.timedelta(hours=1)) == (
        slot + dt.timedelta(minutes=10))
    assert schedules.window_end("0 3 * * *", "UTC", slot, dt.timedelta(hours=1)) == (
        slot + dt.timedelta(hours=1))
