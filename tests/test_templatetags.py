from __future__ import annotations

import datetime as dt

import pytest

from restores.templatetags import dr


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (835910692, "797.2 MiB"),
     (5 * 2**30, "5.0 GiB"), (3 * 2**40, "3.0 TiB")],
)
def test_iec(value: int | None, text: str) -> None:
    assert dr.iec(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (252, "4 min 12 s"), (7500, "2 h 5 min"),
     (3 * 86400 + 4 * 3600, "3 d 4 h"), (-5, "0 s")],
)
def test_span(seconds: int, text: str) -> None:
    assert dr.span(dt.timedelta(seconds=seconds)) == text


def test_utc_always_names_the_zone() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert dr.utc(dt.datetime(2026, 11, 24, 11, 14, 3, tzinfo=paris)) == "2026-11-24 10:14:03 UTC"
    assert dr.utc(None) == "–"
