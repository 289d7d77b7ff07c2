"""The pure pgBackRest helpers against recorded `info --output=json` payloads."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restores.platforms import pgbackrest as pb
from restores.platforms.base import PermanentError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "pgo"
SAMPLE = json.loads((SHARED / "pgbackrest-info.sample.json").read_text())
SET_SAMPLE = json.loads((SHARED / "pgbackrest-info-set.sample.json").read_text())


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def stanza(name: str) -> pb.StanzaInfo:
    return next(s for s in pb.parse_info(SAMPLE) if s.name == name)


@pytest.mark.parametrize(
    ("stanza_name", "repo", "labels", "types", "archive_min", "archive_max"),
    [
        (
            "hippo",
            "repo1",
            [
                "20261124-213840F",
                "20261124-213840F_20261124-213859D",
                "20261124-213840F_20261124-213940I",
                "20261124-221251F",
                "20261124-221251F_20261124-222544I",
            ],
            ["full", "diff", "incr", "full", "incr"],
            "000000010000000000000001",
            "0000000300000000000000F6",
        ),
        (
            "hippo",
            "repo2",
            ["20261124-215941F", "20261124-215948F"],
            ["full", "full"],
            "000000020000000000000085",
            "0000000300000000000000F6",
        ),
        ("rnd", "repo1", [], [], "000000010000000000000001", "0000000100000000000000A8"),
        (
            "rnd",
            "repo2",
            ["20261124-220915F", "20261124-220927F"],
            ["full", "full"],
            "00000001000000000000009D",
            "0000000100000000000000A8",
        ),
    ],
)
def test_it_groups_backups_by_repo_in_time_order(
    stanza_name: str,
    repo: str,
    labels: list[str],
    types: list[str],
    archive_min: str,
    archive_max: str,
) -> None:
    info = stanza(stanza_name).repo(repo)
    assert info is not None
    assert [b.label for b in info.backups] == labels
    assert [b.type for b in info.backups] == types
    assert all(b.repo == repo for b in info.backups)
    assert (info.archive_min, info.archive_max) == (archive_min, archive_max)


def test_it_reads_every_field_of_a_backup() -> None:
    repo1 = stanza("hippo").repo("repo1")
    assert repo1 is not None
    incr = repo1.backups[2]
    assert incr.label == "20261124-213840F_20261124-213940I"
    assert (incr.started_at, incr.stopped_at) == (
        utc("2026-11-24T21:39:40"),
        utc("2026-11-24T21:39:57"),
    )
    assert incr.duration == dt.timedelta(seconds=17)
    assert (incr.database_size, incr.delta_size) == (835697424, 789446924)
    assert (incr.repo_size, incr.repo_delta) == (52663661, 44565648)
    assert (incr.wal_start, incr.wal_stop) == ("00000001000000000000003E",) * 2
    assert (incr.lsn_start, incr.lsn_stop) == ("0/3E000028", "0/3E6B26F0")
    assert incr.prior == "20261124-213840F_20261124-213859D"
    assert incr.references == ("20261124-213840F", "20261124-213840F_20261124-213859D")
    assert incr.error is False and incr.annotations == ()
    annotated = repo1.backups[3]
    assert annotated.annotation("reason") == "pitr-base"
    assert annotated.annotation("source") == "lab"


def test_it_reads_stanza_and_repo_status() -> None:
    rnd = stanza("rnd")
    assert (rnd.status_code, rnd.status_message) == (4, "different across repos")
    repo1 = rnd.repo("repo1")
    assert repo1 is not None
    assert (repo1.status_code, repo1.status_message) == (2, "no valid backups")
    assert stanza("hippo").pg_version == "15"
    assert stanza("hippo").backup_running is False


def test_it_parses_info_for_one_set_too() -> None:
    [hippo] = pb.parse_info(SET_SAMPLE)
    labels = [b.label for r in hippo.repos for b in r.backups]
    assert "20261124-221251F_20261124-222544I" in labels


@pytest.mark.parametrize(
    ("stanza_name", "repo", "latest_archived_at", "earliest", "latest"),
    [
        # earliest: a second after the stop of the oldest usable backup (stop times are whole
        # seconds; a set is picked when its stop is strictly before the target); latest: when
        # the newest WAL arrived, to the next whole second.
        (
            "hippo",
            "repo1",
            utc("2026-11-24T22:26:02"),
            utc("2026-11-24T21:38:44"),
            utc("2026-11-24T22:26:03"),
        ),
        # Without an archive time, the end of the newest backup is the best known bound.
        ("hippo", "repo1", None, utc("2026-11-24T21:38:44"), utc("2026-11-24T22:26:02")),
        (
            "hippo",
            "repo2",
            utc("2026-11-24T22:26:02"),
            utc("2026-11-24T21:59:48"),
            utc("2026-11-24T22:26:03"),
        ),
        # An archive time older than the newest backup cannot shrink the window.
        (
            "hippo",
            "repo2",
            utc("2026-11-24T21:00:00"),
            utc("2026-11-24T21:59:48"),
            utc("2026-11-24T21:59:56"),
        ),
        ("rnd", "repo1", utc("2026-11-24T22:10:00"), None, None),
        (
            "rnd",
            "repo2",
            utc("2026-11-24T22:10:00"),
            utc("2026-11-24T22:09:27"),
            utc("2026-11-24T22:10:01"),
        ),
    ],
)
def test_it_computes_the_recoverable_window(
    stanza_name: str,
    repo: str,
    latest_archived_at: dt.datetime | None,
    earliest: dt.datetime | None,
    latest: dt.datetime | None,
) -> None:
    info = stanza(stanza_name).repo(repo)
    assert info is not None
    window = pb.recoverable_window(info, latest_archived_at=latest_archived_at)
    assert (window.earliest, window.latest) == (earliest, latest)
    assert window.latest_wal == info.archive_max
    assert window.is_empty is (earliest is None)


def _edited(edit: Any) -> pb.RepoInfo:
    data = copy.deepcopy(SAMPLE)
    edit(data[0])
    repo = pb.parse_info(data)[0].repo("repo1")
    assert repo is not None
    return repo


def test_a_backup_with_page_errors_does_not_open_the_window() -> None:
    def mark_first_full_bad(hippo: dict[str, Any]) -> None:
        hippo["backup"][0]["error"] = True

    window = pb.recoverable_window(_edited(mark_first_full_bad), latest_archived_at=None)
    assert window.earliest == utc("2026-11-24T21:39:21")  # a second after the diff's stop


def test_a_backup_whose_wal_expired_does_not_open_the_window() -> None:
    def expire_early_wal(hippo: dict[str, Any]) -> None:
        hippo["archive"][0]["min"] = "000000020000000000000085"

    repo = _edited(expire_early_wal)
    assert [b.label for b in pb.usable_backups(repo)] == [
        "20261124-221251F",
        "20261124-221251F_20261124-222544I",
    ]
    window = pb.recoverable_window(repo, latest_archived_at=None)
    assert window.earliest == utc("2026-11-24T22:13:09")


def test_it_finds_when_the_newest_segment_was_archived() -> None:
    listing = {
        "0000000300000000000000F5-abc.gz": {"type": "file", "size": 1, "time": 1795559100},
        "0000000300000000000000F6-def.gz": {"type": "file", "size": 1, "time": 1795559162},
        "0000000300000000000000F6.00000028.backup": {"type": "file", "size": 1, "time": 1795559170},
        "sub": {"type": "path"},
    }
    at = pb.newest_archived_time(listing, "0000000300000000000000F6")
    assert at == dt.datetime.fromtimestamp(1795559170, tz=dt.UTC)
    assert pb.newest_archived_time(listing, "0000000300000000000000F7") is None
    assert pb.wal_timeline_dir("0000000300000000000000F6") == "0000000300000000"
    with pytest.raises(ValueError):
        pb.wal_timeline_dir("../../etc/passwd")


def test_it_finds_the_backup_an_operation_made() -> None:
    repo1 = stanza("hippo").repo("repo1")
    assert repo1 is not None
    assert pb.backup_for_operation(repo1.backups, "nope") is None
    tagged = copy.deepcopy(SAMPLE)
    tagged[0]["backup"][1]["annotation"] = {pb.OPERATION_ANNOTATION: "op-42"}
    repo = pb.parse_info(tagged)[0].repo("repo1")
    assert repo is not None
    found = pb.backup_for_operation(repo.backups, "op-42")
    assert found is not None and found.label == "20261124-213840F_20261124-213859D"


@pytest.mark.parametrize(
    ("repo", "backup_type", "op", "expected"),
    [
        (
            "repo1",
            "full",
            "3f2a",
            ["--repo=1", "--type=full", f"--annotation={pb.OPERATION_ANNOTATION}=3f2a"],
        ),
        (
            "repo4",
            "incr",
            "a-b",
            ["--repo=4", "--type=incr", f"--annotation={pb.OPERATION_ANNOTATION}=a-b"],
        ),
    ],
)
def test_it_builds_backup_options(
    repo: str, backup_type: str, op: str, expected: list[str]
) -> None:
    assert pb.backup_options(repo=repo, backup_type=backup_type, operation_id=op) == expected


@pytest.mark.parametrize(
    ("repo", "backup_type", "op"),
    [
        ("repo5", "full", "x"),
        ("repo0", "full", "x"),
        ("s3", "full", "x"),
        ("repo1", "weekly", "x"),
        ("repo1", "full", "x y"),
        ("repo1", "full", "x;rm -rf /"),
        ("repo1", "full", ""),
    ],
)
def test_it_refuses_bad_backup_options(repo: str, backup_type: str, op: str) -> None:
    with pytest.raises(PermanentError):
        pb.backup_options(repo=repo, backup_type=backup_type, operation_id=op)


@given(repo=st.text(max_size=12), backup_type=st.text(max_size=8), op=st.text(max_size=80))
def test_no_input_produces_an_option_outside_the_allowed_shape(
    repo: str, backup_type: str, op: str
) -> None:
    try:
        options = pb.backup_options(repo=repo, backup_type=backup_type, operation_id=op)
    except PermanentError:
        return
    assert len(options) == 3
    assert options[0] in {"--repo=1", "--repo=2", "--repo=3", "--repo=4"}
    assert options[1] in {"--type=full", "--type=diff", "--type=incr"}
    assert options[2].startswith(f"--annotation={pb.OPERATION_ANNOTATION}=")
    # Nothing a shell or pgBackRest could read as a second option or a command.
    assert all(not set(o) & set(" \t\n;&|`$<>\"'\\") for o in options)


backup_json = st.fixed_dictionaries(
    {
        "label": st.from_regex(r"\A20261124-\d{6}F\Z"),
        "type": st.sampled_from(["full", "diff", "incr"]),
        "database": st.fixed_dictionaries({"id": st.just(1), "repo-key": st.integers(1, 4)}),
        "timestamp": st.fixed_dictionaries(
            {"start": st.integers(1.6e9, 1.8e9), "stop": st.integers(1.6e9, 1.8e9)}
        ),
        "archive": st.fixed_dictionaries(
            {
                "start": st.from_regex(r"\A[0-9A-F]{24}\Z"),
                "stop": st.from_regex(r"\A[0-9A-F]{24}\Z"),
            }
        ),
        "info": st.fixed_dictionaries(
            {
                "size": st.integers(0, 2**40),
                "delta": st.integers(0, 2**40),
                "repository": st.fixed_dictionaries(
                    {"size": st.integers(0, 2**40), "delta": st.integers(0, 2**40)}
                ),
            }
        ),
        "error": st.booleans(),
    }
)


@given(backups=st.lists(backup_json, max_size=12))
def test_the_window_always_starts_at_a_usable_backup_end(backups: list[dict[str, Any]]) -> None:
    data = [
        {
            "name": "db",
            "status": {"code": 0, "message": "ok"},
            "repo": [{"key": k, "status": {"code": 0, "message": "ok"}} for k in range(1, 5)],
            "archive": [],
            "backup": backups,
            "db": [{"version": "15"}],
        }
    ]
    [info] = pb.parse_info(data)
    for repo in info.repos:
        window = pb.recoverable_window(repo, latest_archived_at=None)
        good = [b for b in repo.backups if not b.error]
        if not good:
            assert window.is_empty
            continue
        assert window.earliest == min(b.stopped_at for b in good) + pb.STOP_RESOLUTION
        assert window.latest is not None and window.latest >= window.earliest
        assert [b.stopped_at for b in repo.backups] == sorted(b.stopped_at for b in repo.backups)
