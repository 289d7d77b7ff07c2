"""None"""

from __future__ import annotations

import datetime as dt

import pytest

from restores.templatetags import dr


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (835910692, "797.2 MiB"),
     (5 * 2**30, "5.0 GiB"), (3 * 2**40, "3.0 TiB")],
)
def test_a_size_is_shown_in_binary_units_and_none_as_a_dash(value: int | None, text: str) -> None:
    assert dr.iec(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (252, "4 min 12 s"), (7500, "2 h 5 min"),
     (3 * 86400 + 4 * 3600, "3 d 4 h"), (-5, "0 s")],
)
def test_a_duration_is_shown_in_its_two_largest_units_and_never_negative(
    seconds: int, text: str
) -> None:
    assert dr.span(dt.timedelta(seconds=seconds)) == text


def test_utc_always_names_the_zone() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert dr.utc(dt.datetime(2026, 11, 24, 11, 14, 3, tzinfo=paris)) == "2026-11-24 10:14:03 UTC"
    assert dr.utc(None) == "–"


def test_backup_rows_shows_each_backup_as_the_cluster_page_lists_it() -> None:
    from restores.models import Backup

    stop = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    good = Backup(label="20261124-090000F_20261124-093000I", type="incr",
                  started_at=stop - dt.timedelta(seconds=252), stopped_at=stop,
                  database_size=30_000_000, repo_size=4_000_000, repo_delta=1024,
                  wal_start="000000010000000000000002", wal_stop="000000010000000000000003")
    bad = Backup(label='<x>"', type="full", started_at=stop, stopped_at=stop, error=True,
                 database_size=0, repo_size=0, repo_delta=0, wal_start="&", wal_stop="")
    rows = dr.backup_rows([good, bad]).splitlines()
    assert rows[0] == (
        '<tr data-label="20261124-090000F_20261124-093000I">'
        "<td><code>20261124-090000F_20261124-093000I</code></td>"
        '<td><span class="btype btype-incr">incr</span></td>'
        "<td>2026-11-24 09:25:48 UTC</td><td>2026-11-24 09:30:00 UTC</td>"
        '<td>4 min 12 s</td><td>28.6 MiB</td><td title="this backup wrote 1.0 KiB">3.8 MiB</td>'
        "<td><code>000000010000000000000002</code><br><code>000000010000000000000003</code></td>"
        "</tr>")
    assert rows[1].startswith('<tr data-label="&lt;x&gt;&quot;" class="has-error"><td><code>'
                              '&lt;x&gt;&quot;</code> <span class="warn"')
    assert "<code>&amp;</code>" in rows[1] and len(rows) == 2
    assert dr.backup_rows([]) == ""
