"""Restore options for PGO (shell text) and for a direct pgBackRest call (argv)."""

from __future__ import annotations

import datetime as dt
import shlex
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restores.platforms import restore_options as ro
from restores.platforms import targets
from restores.platforms.base import PermanentError
from restores.platforms.targets import InvalidRestoreOptions, RestoreTarget

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
UTC_TIME = dt.datetime(2026, 11, 24, 10, 14, 3, tzinfo=dt.UTC)
EDT = dt.timezone(dt.timedelta(hours=-4))
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
FULL = "20261124-213840F"
INCR = "20261124-213840F_20261124-213940I"

BUILT = [
    # (target, db_include, process_max, PGO options, local argv after --repo=1)
    (RestoreTarget(), (), None, [], ["--type=default"]),
    (RestoreTarget(label=FULL), (), None, [f"--set={FULL}"], ["--type=default", f"--set={FULL}"]),
    (RestoreTarget("set", label=INCR), (), None,
     ["--type=immediate", f"--set={INCR}"],
     ["--type=immediate", "--target-action=promote", f"--set={INCR}"]),
    (RestoreTarget("time", time=UTC_TIME), (), None,
     ["--type=time", '--target="2026-11-24 10:14:03+00"'],
     ["--type=time", "--target=2026-11-24 10:14:03+00", "--target-action=promote"]),
    (RestoreTarget("time", time=dt.datetime(2021, 6, 9, 14, 15, 11, tzinfo=EDT)), (), None,
     ["--type=time", '--target="2021-06-09 14:15:11-04"'],  # the seed's PITR
     ["--type=time", "--target=2021-06-09 14:15:11-04", "--target-action=promote"]),
    (RestoreTarget("time", time=dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=IST),
                   exclusive=True, label=FULL), (), None,
     ["--type=time", '--target="2026-01-02 03:04:05.12+05:30"', "--target-exclusive",
      f"--set={FULL}"],
     ["--type=time", "--target=2026-01-02 03:04:05.12+05:30", "--target-exclusive",
      "--target-action=promote", f"--set={FULL}"]),
    (RestoreTarget("lsn", lsn="0/3000060"), (), None,
     ["--type=lsn", '--target="0/3000060"'],
     ["--type=lsn", "--target=0/3000060", "--target-action=promote"]),
    (RestoreTarget("lsn", lsn="1a/ff", exclusive=True), (), None,
     ["--type=lsn", '--target="1A/FF"', "--target-exclusive"],
     ["--type=lsn", "--target=1A/FF", "--target-exclusive", "--target-action=promote"]),
    (RestoreTarget("xid", xid=4711), (), None,
     ["--type=xid", '--target="4711"'],
     ["--type=xid", "--target=4711", "--target-action=promote"]),
    (RestoreTarget("name", name="before migration 2.1"), (), None,
     ["--type=name", '--target="before migration 2.1"'],
     ["--type=name", "--target=before migration 2.1", "--target-action=promote"]),
    (RestoreTarget("immediate"), (), None,
     ["--type=immediate"], ["--type=immediate", "--target-action=promote"]),
    (RestoreTarget(), ("hippo",), None, ["--db-include=hippo"],  # the seed document's example
     ["--type=default", "--db-include=hippo"]),
    (RestoreTarget(), ["hippo", "Zoo_2", "pay$", "hippo"], 4,
     ["--db-include=hippo", "--db-include=Zoo_2", "--db-include='pay$'", "--process-max=4"],
     ["--type=default", "--db-include=hippo", "--db-include=Zoo_2", "--db-include=pay$",
      "--process-max=4"]),
    (RestoreTarget(), "hippo", 16, ["--db-include=hippo", "--process-max=16"],
     ["--type=default", "--db-include=hippo", "--process-max=16"]),
]  # fmt: skip


@pytest.mark.parametrize(("target", "dbs", "process_max", "pgo", "local"), BUILT)
def test_options_are_built_from_validated_fields(
    target: RestoreTarget, dbs: Any, process_max: int | None, pgo: list[str], local: list[str]
) -> None:
    built = ro.pgo_restore_options(target, now=NOW, db_include=dbs, process_max=process_max)
    assert built == pgo
    assert ro.check_pgo_options(built) == pgo
    argv = ro.local_restore_argv(
        target, now=NOW, repo="repo1", db_include=dbs, process_max=process_max
    )
    assert argv == ["--repo=1", *local]


def test_local_argv_can_name_the_data_directory_and_ask_for_a_delta_restore() -> None:
    argv = ro.local_restore_argv(
        RestoreTarget(), now=NOW, repo="repo3", pg_path="/srv/pg/hippo data", delta=True
    )
    assert argv == ["--repo=3", "--pg1-path=/srv/pg/hippo data", "--type=default", "--delta"]


def test_a_target_exactly_now_is_allowed() -> None:
    target = RestoreTarget("time", time=NOW)
    assert ro.pgo_restore_options(target, now=NOW)[1] == '--target="2026-11-24 12:00:00+00"'


ODD = dt.timezone(dt.timedelta(seconds=30))


def _local(**kwargs: Any) -> list[str]:
    kwargs.setdefault("repo", "repo1")
    return ro.local_restore_argv(RestoreTarget(), now=NOW, **kwargs)


def _pgo(**kwargs: Any) -> list[str]:
    target = kwargs.pop("target", RestoreTarget())
    return ro.pgo_restore_options(target, now=kwargs.pop("now", NOW), **kwargs)


REFUSED = [
    (lambda: RestoreTarget("bogus"), targets.UNKNOWN_KIND),  # type: ignore[arg-type]
    (lambda: RestoreTarget("time"), targets.TARGET_MISSING.format(kind="time")),
    (lambda: RestoreTarget("set"), targets.TARGET_MISSING.format(kind="set")),
    (lambda: RestoreTarget("lsn", xid=5), targets.TARGET_EXTRA.format(field="xid", kind="lsn")),
    (lambda: RestoreTarget(name="x"), targets.TARGET_EXTRA.format(field="name", kind="latest")),
    (lambda: RestoreTarget("time", time=dt.datetime(2026, 1, 1)), targets.TIME_NAIVE),
    (lambda: RestoreTarget("time", time="2026-01-01 00:00:00+00"), targets.TIME_NAIVE),  # type: ignore[arg-type]
    (lambda: RestoreTarget("time", time=dt.datetime(2026, 1, 1, tzinfo=ODD)),
     targets.TIME_OFFSET_SECONDS),
    (lambda: _pgo(target=RestoreTarget("time", time=NOW + dt.timedelta(seconds=1))),
     ro.TIME_IN_FUTURE),
    (lambda: _pgo(target=RestoreTarget("time", time=UTC_TIME), now=dt.datetime(2026, 12, 1)),
     targets.TIME_NAIVE),
    (lambda: RestoreTarget("lsn", lsn="0/XYZ"), targets.LSN_INVALID),
    (lambda: RestoreTarget("lsn", lsn="0/123456789"), targets.LSN_INVALID),
    (lambda: RestoreTarget("lsn", lsn="0/1\n"), targets.LSN_INVALID),
    (lambda: RestoreTarget("lsn", lsn="03000060"), targets.LSN_INVALID),
    (lambda: RestoreTarget("xid", xid=0), targets.XID_INVALID),
    (lambda: RestoreTarget("xid", xid=-3), targets.XID_INVALID),
    (lambda: RestoreTarget("xid", xid=True), targets.XID_INVALID),
    (lambda: RestoreTarget("xid", xid="12"), targets.XID_INVALID),  # type: ignore[arg-type]
    (lambda: RestoreTarget("xid", xid=2**64), targets.XID_INVALID),
    (lambda: RestoreTarget("name", name=""), targets.NAME_INVALID),
    (lambda: RestoreTarget("name", name=" lead"), targets.NAME_INVALID),
    (lambda: RestoreTarget("name", name="trail "), targets.NAME_INVALID),
    (lambda: RestoreTarget("name", name="a;b"), targets.NAME_INVALID),
    (lambda: RestoreTarget("name", name='a"b'), targets.NAME_INVALID),
    (lambda: RestoreTarget("name", name="x" * 64), targets.NAME_INVALID),
    (lambda: RestoreTarget(label="20261124-213840D"), targets.LABEL_INVALID),
    (lambda: RestoreTarget(label="20261124-213840F_20261124-213940F"), targets.LABEL_INVALID),
    (lambda: RestoreTarget(label="20261124-213840F\n"), targets.LABEL_INVALID),
    (lambda: RestoreTarget(label="２０２６１１２４-213840F"), targets.LABEL_INVALID),
    (lambda: RestoreTarget(exclusive=True), targets.EXCLUSIVE_NOT_ALLOWED),
    (lambda: RestoreTarget("name", name="x", exclusive=True), targets.EXCLUSIVE_NOT_ALLOWED),
    (lambda: RestoreTarget("immediate", exclusive=True), targets.EXCLUSIVE_NOT_ALLOWED),
    (lambda: RestoreTarget("xid", xid=1, exclusive="yes"), targets.EXCLUSIVE_NOT_ALLOWED),  # type: ignore[arg-type]
    (lambda: _pgo(db_include=["postgres"]), ro.DB_SYSTEM.format(name="postgres")),
    (lambda: _pgo(db_include=["template1"]), ro.DB_SYSTEM.format(name="template1")),
    (lambda: _pgo(db_include=["my-db"]), ro.DB_NAME_INVALID.format(name="my-db")),
    (lambda: _pgo(db_include=["1db"]), ro.DB_NAME_INVALID.format(name="1db")),
    (lambda: _pgo(db_include=["a b"]), ro.DB_NAME_INVALID.format(name="a b")),
    (lambda: _pgo(db_include=["x'; rm -rf /"]), ro.DB_NAME_INVALID.format(name="x'; rm -rf /")),
    (lambda: _pgo(db_include=["d" * 64]), ro.DB_NAME_INVALID.format(name="d" * 64)),
    (lambda: _pgo(db_include=[None]), ro.DB_NAME_INVALID.format(name=None)),
    (lambda: _pgo(process_max=0), ro.PROCESS_MAX_RANGE.format(limit=16)),
    (lambda: _pgo(process_max=17), ro.PROCESS_MAX_RANGE.format(limit=16)),
    (lambda: _pgo(process_max=8, process_max_limit=4), ro.PROCESS_MAX_RANGE.format(limit=4)),
    (lambda: _pgo(process_max=True), ro.PROCESS_MAX_RANGE.format(limit=16)),
    (lambda: _pgo(process_max="4"), ro.PROCESS_MAX_RANGE.format(limit=16)),
    (lambda: _local(repo="repo5"), ro.REPO_INVALID.format(repo="repo5")),
    (lambda: _local(repo="repo1x"), ro.REPO_INVALID.format(repo="repo1x")),
    (lambda: _local(pg_path="data"), ro.PG_PATH_INVALID),
    (lambda: _local(pg_path="/a\nb"), ro.PG_PATH_INVALID),
]  # fmt: skip


@pytest.mark.parametrize(("build", "message"), REFUSED)
def test_invalid_fields_are_refused_with_a_clear_message(build: Any, message: str) -> None:
    with pytest.raises(InvalidRestoreOptions) as caught:
        build()
    assert caught.value.message == message
    assert isinstance(caught.value, PermanentError)


# -- option lists handed to the manifest builders -----------------------------------------

FORBIDDEN = [
    ("--repo=2", "use the repo name field"),
    ("--repo 2", "use the repo name field"),
    ("--stanza=db", "PGO sets the stanza"),
    ("--pg1-path=/pgdata", "PGO sets the data directory"),
    ("--target-action=pause", "PGO adds --target-action=promote to any --target"),
    ("--link-map=pg_wal=/x", "PGO maps pg_wal itself"),
    ("--db-include=x--stanza", "PGO sets the stanza"),  # PGO's check is a substring match
]


@pytest.mark.parametrize(("option", "why"), FORBIDDEN)
def test_options_pgo_forbids_are_refused(option: str, why: str) -> None:
    assert ro.forbidden_reason(option) == why
    with pytest.raises(InvalidRestoreOptions) as caught:
        ro.check_pgo_options(["--type=immediate", option])
    assert caught.value.message == ro.FORBIDDEN_OPTION.format(option=option, why=why)


@pytest.mark.parametrize(
    "options",
    [
        ["--type=default"],
        ["--delta"],
        ["--type=time", "--target=2021-06-09"],
        ["--type=time", '--target="2021-06-09 14:15:11"'],  # no offset
        ["--type=time", '--target="2021-06-09 14:15:11 EDT"'],  # §12.2: abbreviations fail
        ["--type=name", '--target="x$(reboot)"'],
        ["--type=time"],
        ['--target="0/1"'],
        ["--type=lsn", '--target="0/1"', "--type=lsn"],
        ['--target="2021-06-09 14:15:11-04"', "--type=time"],  # not in the built order
        ["--type=lsn", '--target="0/a"'],  # not upper case as built
        ["--db-include='hippo'"],  # quoted without need
        ["--db-include=pay$"],  # unquoted $
        ["--process-max=0"],
        ["; rm -rf /"],
        ["--type=immediate --set=20261124-213840F"],
        [7],
    ],
)
def test_option_lists_the_console_did_not_build_are_refused(options: list[Any]) -> None:
    with pytest.raises(InvalidRestoreOptions):
        ro.check_pgo_options(options)


def test_the_seed_pitr_options_are_accepted_as_they_are() -> None:
    options = ["--type=time", '--target="2021-06-09 14:15:11-04"']
    assert ro.check_pgo_options(options) == options
    assert ro.check_pgo_options(tuple(options)) == options
    assert ro.check_pgo_options([]) == []


# -- properties ----------------------------------------------------------------------------

SHELL_SAFE = set(string.ascii_letters + string.digits + "-_=./:+,@%")
TARGET_CHARS = set(string.ascii_letters + string.digits + " _.:+/-")


def shell_words(option: str) -> list[str] | None:
    """The words bash makes of `option`, or None if it holds an unquoted shell
    metacharacter, a `$`, backquote, backslash or `!` inside double quotes, or an
    unbalanced quote."""
    quote = None
    for char in option:
        if quote is None:
            if char in "\"'":
                quote = char
            elif char not in SHELL_SAFE:
                return None
        elif char == quote:
            quote = None
        elif char in "\n\r\0" or (quote == '"' and char in "$`\\!"):
            return None
    return None if quote else shlex.split(option)


def assert_safe_for_pgo(options: list[str]) -> None:
    assert not [o for o in options if ro.forbidden_reason(o)]
    quoted = [o for o in options if '"' in o or "'" in o]
    assert len([o for o in quoted if '"' in o]) <= 1
    for option in options:
        words = shell_words(option)
        assert words is not None and len(words) == 1, option
        if '"' in option:
            assert option.startswith('--target="') and option.endswith('"')
            assert set(option[len('--target="') : -1]) <= TARGET_CHARS
        elif "'" in option:
            assert option.startswith("--db-include='") and "$" in option
    assert ro.check_pgo_options(options) == options


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from((True,) * 3 + (False,)).flatmap(lambda ok: strategy if ok else st.none())


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values four times in five, so both outcomes are exercised."""
    return st.sampled_from((True,) * 4 + (False,)).flatmap(lambda ok: valid if ok else other)


MINUTES = st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
SECONDS = st.integers(-23 * 3600, 23 * 3600).map(lambda s: dt.timezone(dt.timedelta(seconds=s)))
PAST = {"min_value": dt.datetime(1990, 1, 1), "max_value": dt.datetime(2026, 11, 23)}
TIMES = mostly(
    st.datetimes(**PAST, timezones=MINUTES),
    st.datetimes(**PAST, timezones=SECONDS)
    | st.datetimes(**PAST)
    | st.datetimes(min_value=dt.datetime(2026, 11, 25), timezones=MINUTES),
)
LABELS = mostly(
    st.from_regex(r"\A[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?\Z"), st.text(max_size=40)
)
LSNS = mostly(st.from_regex(r"\A[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}\Z"), st.text(max_size=20))
NAMES = mostly(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9 _.:+-]{0,20}\Z"), st.text(max_size=70))
XIDS = mostly(st.integers(1, 2**64 - 1), st.integers(-5, 2**65) | st.booleans() | st.text())
DBS = st.lists(
    mostly(st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_$]{0,10}\Z"), st.text(max_size=12)), max_size=3
)
PROCESS_MAX = maybe(mostly(st.integers(1, 16), st.integers(-2, 40) | st.booleans()))
TARGET_KWARGS = st.fixed_dictionaries(
    {
        "kind": mostly(st.sampled_from(targets.TARGET_KINDS), st.text(max_size=10)),
        "time": maybe(TIMES),
        "lsn": maybe(LSNS),
        "xid": maybe(XIDS),
        "name": maybe(NAMES),
        "label": maybe(LABELS),
        "exclusive": st.booleans(),
    }
)


def build_target(kwargs: dict[str, Any]) -> RestoreTarget:
    """Only the field the kind uses (and exclusive only where it may be), so that valid
    targets are common."""
    kind = kwargs["kind"]
    field = targets._KIND_FIELD.get(kind)
    kept = {k: v for k, v in kwargs.items() if k in ("kind", "label", field)}
    return RestoreTarget(**kept, exclusive=kwargs["exclusive"] and kind in targets.EXCLUSIVE_KINDS)


@settings(max_examples=400, deadline=None)
@given(TARGET_KWARGS, st.integers(0, 3).map(lambda pick: pick == 0), DBS, PROCESS_MAX)
def test_pgo_options_are_either_refused_or_safe_for_bash(
    kwargs: dict[str, Any], all_fields: bool, dbs: list[str], process_max: int | None
) -> None:
    try:
        target = RestoreTarget(**kwargs) if all_fields else build_target(kwargs)
        options = ro.pgo_restore_options(target, now=NOW, db_include=dbs, process_max=process_max)
    except InvalidRestoreOptions:
        return
    assert_safe_for_pgo(options)
    assert ("--target-exclusive" in options) == target.exclusive
    if target.kind in ("time", "lsn", "xid", "name"):
        assert options[:1] == [f"--type={target.kind}"]
        assert options[1].startswith('--target="')


@settings(max_examples=300, deadline=None)
@given(TARGET_KWARGS, DBS, PROCESS_MAX, st.booleans())
def test_local_argv_is_either_refused_or_one_option_per_element(
    kwargs: dict[str, Any], dbs: list[str], process_max: int | None, delta: bool
) -> None:
    try:
        argv = ro.local_restore_argv(
            build_target(kwargs),
            now=NOW,
            repo="repo2",
            db_include=dbs,
            process_max=process_max,
            delta=delta,
        )
    except InvalidRestoreOptions:
        return
    assert all(a.startswith("--") and "\n" not in a and "\0" not in a for a in argv)
    assert argv[0] == "--repo=2"
    latest = kwargs["kind"] == "latest"
    assert ("--type=default" in argv) == latest
    assert ("--target-action=promote" in argv) == (not latest)
    assert ("--delta" in argv) == delta


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["--type=time", "--type=lsn", "--target-exclusive", "--set=20261124-213840F"]
        )
        | st.text(max_size=30).map(lambda t: "--" + t)
        | st.text(max_size=30),
        max_size=4,
    )
)
def test_checked_option_lists_are_safe_for_bash(options: list[str]) -> None:
    try:
        checked = ro.check_pgo_options(options)
    except InvalidRestoreOptions:
        return
    assert_safe_for_pgo(checked)
