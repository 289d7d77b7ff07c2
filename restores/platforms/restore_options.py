"""pgBackRest restore options from validated fields, for PGO and for a direct call.

PGO joins `options[]` with spaces and runs `bash -xc "pgbackrest restore ${opts}"` in the
restore Job (PGO-REFERENCE §4), so every option here is shell text: only characters that
mean nothing to bash, except the one `--target="…"` value, which is double-quoted and holds
only characters that mean nothing inside double quotes either (no `$`, backquote, `\\`, `"`).
A database name containing `$` is single-quoted. PGO rejects (by substring) `--repo=`,
`--repo `, `--stanza`, `--pg1-path`, `--target-action` and `--link-map`, and adds them
itself; this module never produces them for PGO.

The local platform runs pgBackRest without a shell: `local_restore_argv` gives plain argv
elements (no quoting) and adds what PGO would add: `--repo`, `--target-action=promote`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from .targets import (
    TIME_NAIVE,
    UNKNOWN_KIND,
    InvalidRestoreOptions,
    RestoreTarget,
    full_match,
    time_text,
)

PROCESS_MAX_LIMIT = 16  # a platform's default ceiling; pgBackRest itself allows 1..999
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})
# (substring, why): PGO's own check, substring match on each option (ctl/pgbackrest.go).
FORBIDDEN = (
    ("--repo=", "use the repo name field"),
    ("--repo ", "use the repo name field"),
    ("--stanza", "PGO sets the stanza"),
    ("--pg1-path", "PGO sets the data directory"),
    ("--target-action", "PGO adds --target-action=promote to any --target"),
    ("--link-map", "PGO maps pg_wal itself"),
)

DB_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", re.ASCII)
_TIME_TEXT = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?[+-][0-9]{2}(:[0-9]{2})?"
)

TIME_IN_FUTURE = "The target time is in the future; pick a time that has passed, or 'latest'."
DB_NAME_INVALID = (
    "{name!r} is not a database name pgBackRest can include: a PostgreSQL identifier "
    "(letters, digits, _ and $, starting with a letter or _, at most 63 characters)."
)
DB_SYSTEM = "{name!r} is a system database; pgBackRest always restores it."
PROCESS_MAX_RANGE = "--process-max must be a whole number from 1 to {limit}."
PG_PATH_INVALID = "The data directory must be an absolute path without control characters."
REPO_INVALID = "{repo!r} is not a pgBackRest repo (repo1 to repo4)."
FORBIDDEN_OPTION = "The restore option {option!r} is not allowed: {why}."
OPTION_NOT_BUILT = "The restore option {option!r} is not one the console builds."
OPTIONS_NOT_CANONICAL = "These restore options are not in the form the console builds: {options}."


def _target_value(target: RestoreTarget) -> str | None:
    if target.kind == "time":
        return time_text(target.time)
    if target.kind == "lsn":
        return str(target.lsn).upper()
    if target.kind == "xid":
        return str(target.xid)
    return target.name if target.kind == "name" else None


def _check_common(
    target: RestoreTarget, now: dt.datetime | None, process_max: int | None, limit: int
) -> None:
    if not isinstance(target, RestoreTarget):
        raise InvalidRestoreOptions(UNKNOWN_KIND)
    if now is not None and target.time is not None:
        if now.utcoffset() is None:
            raise InvalidRestoreOptions(TIME_NAIVE)
        if target.time > now:
            raise InvalidRestoreOptions(TIME_IN_FUTURE)
    if process_max is not None and (
        type(process_max) is not int or not 1 <= process_max <= min(limit, 999)
    ):
        raise InvalidRestoreOptions(PROCESS_MAX_RANGE.format(limit=min(limit, 999)))


def _databases(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):  # one name, not its letters
        names = [names]
    result: list[str] = []
    for name in names:
        if not full_match(DB_NAME_RE, name) or len(name.encode()) > 63:
            raise InvalidRestoreOptions(DB_NAME_INVALID.format(name=name))
        if name in SYSTEM_DATABASES:
            raise InvalidRestoreOptions(DB_SYSTEM.format(name=name))
        if name not in result:
            result.append(name)
    return result


def _options(
    target: RestoreTarget,
    *,
    now: dt.datetime | None,
    db_include: Iterable[str],
    process_max: int | None,
    limit: int,
    for_shell: bool,
) -> list[str]:
    _check_common(target, now, process_max, limit)
    kind, value = target.kind, _target_value(target)
    options: list[str] = []
    if kind == "latest":
        options += [] if for_shell else ["--type=default"]
    else:
        options.append(f"--type={'immediate' if kind == 'set' else kind}")
    if value is not None:
        options.append(f'--target="{value}"' if for_shell else f"--target={value}")
    if target.exclusive:
        options.append("--target-exclusive")
    if kind != "latest" and not for_shell:
        options.append("--target-action=promote")
    if target.label:
        options.append(f"--set={target.label}")
    for name in _databases(db_include):
        quoted = f"'{name}'" if for_shell and "$" in name else name
        options.append(f"--db-include={quoted}")
    if process_max is not None:
        options.append(f"--process-max={process_max}")
    return options


def pgo_restore_options(
    target: RestoreTarget,
    *,
    now: dt.datetime,
    db_include: Iterable[str] = (),
    process_max: int | None = None,
    process_max_limit: int = PROCESS_MAX_LIMIT,
) -> list[str]:
    """`options[]` for spec.dataSource.postgresCluster / pgbackrest or restore.options."""
    return _options(
        target,
        now=now,
        db_include=db_include,
        process_max=process_max,
        limit=process_max_limit,
        for_shell=True,
    )


def local_restore_argv(
    target: RestoreTarget,
    *,
    now: dt.datetime,
    repo: str,
    db_include: Iterable[str] = (),
    process_max: int | None = None,
    process_max_limit: int = PROCESS_MAX_LIMIT,
    delta: bool = False,
    pg_path: str | None = None,
) -> list[str]:
    """argv elements for `pgbackrest [--config --stanza] <these> restore`, run without a
    shell: `--type=default` for latest, `--target-action=promote` for every other target."""
    match = re.fullmatch(r"repo([1-4])", repo) if isinstance(repo, str) else None
    if match is None:
        raise InvalidRestoreOptions(REPO_INVALID.format(repo=repo))
    argv = [f"--repo={match.group(1)}"]
    if pg_path is not None:
        if not isinstance(pg_path, str) or not pg_path.startswith("/") or not pg_path.isprintable():
            raise InvalidRestoreOptions(PG_PATH_INVALID)
        argv.append(f"--pg1-path={pg_path}")
    argv += _options(
        target,
        now=now,
        db_include=db_include,
        process_max=process_max,
        limit=process_max_limit,
        for_shell=False,
    )
    return [*argv, "--delta"] if delta else argv


# -- checking option lists handed to the manifest builders ---------------------------------

_PARSE = {
    "type": re.compile(r"--type=(time|lsn|xid|name|immediate)", re.ASCII),
    "target": re.compile(r'--target="([0-9A-Za-z _.:+/-]+)"', re.ASCII),
    "exclusive": re.compile(r"--target-exclusive", re.ASCII),
    "set": re.compile(r"--set=(\S+)", re.ASCII),
    "db": re.compile(r"--db-include=(?:'([^']+)'|([^'\s]+))", re.ASCII),
    "process_max": re.compile(r"--process-max=([1-9][0-9]{0,2})", re.ASCII),
}


def forbidden_reason(option: str) -> str | None:
    """Why PGO would refuse this option (its substring check), or None."""
    return next((why for text, why in FORBIDDEN if text in option), None)


def check_pgo_options(options: Sequence[str]) -> list[str]:
    """`options` unchanged if they are exactly what `pgo_restore_options` builds for some
    valid input (the future check aside); InvalidRestoreOptions otherwise."""
    if isinstance(options, str):
        options = [options]
    fields: dict[str, object] = {}
    databases: list[str] = []
    for option in options:
        why = forbidden_reason(option) if isinstance(option, str) else None
        if why:
            raise InvalidRestoreOptions(FORBIDDEN_OPTION.format(option=option, why=why))
        parsed = next(
            (
                (key, m)
                for key, rx in _PARSE.items()
                if isinstance(option, str) and (m := rx.fullmatch(option))
            ),
            None,
        )
        if parsed is None:
            raise InvalidRestoreOptions(OPTION_NOT_BUILT.format(option=option))
        key, found = parsed
        if key == "db":
            databases.append(found.group(1) or found.group(2))
        else:
            fields[key] = found.group(1) if found.groups() else True
    rebuilt = _options(
        _parsed_target(fields, options),
        now=None,
        db_include=databases,
        process_max=int(str(fields["process_max"])) if "process_max" in fields else None,
        limit=999,
        for_shell=True,
    )
    if rebuilt != list(options):
        raise InvalidRestoreOptions(OPTIONS_NOT_CANONICAL.format(options=list(options)))
    return list(options)


def _parsed_target(fields: dict[str, object], options: Sequence[str]) -> RestoreTarget:
    value = fields.get("target")
    kind = str(fields.get("type", "latest"))
    label = str(fields["set"]) if "set" in fields else None
    if kind == "immediate" and label is not None:
        kind = "set"
    try:
        when = dt.datetime.fromisoformat(str(value)) if kind == "time" else None
        if kind == "time" and not re.fullmatch(_TIME_TEXT, str(value)):
            raise ValueError(value)
        return RestoreTarget(
            kind=kind,  # type: ignore[arg-type]
            time=when,
            lsn=str(value) if kind == "lsn" else None,
            xid=int(str(value)) if kind == "xid" and re.fullmatch(r"[0-9]{1,20}", str(value))
            else None,
            name=str(value) if kind == "name" else None,
            label=label,
            exclusive=bool(fields.get("exclusive", False)),
        )
    except ValueError as exc:
        raise InvalidRestoreOptions(OPTIONS_NOT_CANONICAL.format(options=list(options))) from exc
