"""The pieces of a clone (see clone.py): the restore command, words for the plan, reading
the new server's log, and turning a restored copy into an independent cluster.

Nothing here keeps state; clone.py decides which piece runs next.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from psycopg import sql as pgsql

from ..base import CloneRequest, PermanentError
from ..restore_options import SYSTEM_DATABASES, local_restore_argv
from ..targets import RestoreTarget
from .database import query
from .fleet import CONF_MARKER, STANZA, ClusterRecord, Fleet
from .proc import PGBACKREST, Runner

# Left in postgresql.auto.conf by pgBackRest's restore; harmless on a primary until the node
# becomes a standby one day and the old target applies again (pitfall 9).
RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_end_command",
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
)
# FATAL lines a starting server logs for clients it turns away; they say nothing about why
# the server itself stopped.
_CONNECTION_NOISE = re.compile(
    r"the database system is (starting up|not yet accepting connections|shutting down"
    r"|in recovery mode)|terminating connection due to administrator command"
)
_FATAL_RE = re.compile(r"\b(FATAL|PANIC):\s+(.*)")
_EXPLAINED = (
    (
        "recovery ended before configured recovery target was reached",
        "The target is after the last archived transaction in {source}'s {repo}: PostgreSQL "
        "replayed all the archived WAL without reaching it, and stopped. Choose an earlier "
        "point (the recoverable window ends at the newest archived WAL), or clone 'latest'.",
    ),
    (
        "requested recovery stop point is before consistent recovery point",
        "The target is before the backup it was restored from became consistent: choose a "
        "later point, or a backup set that ended before the target.",
    ),
)


# -- the restore command and the plan ---------------------------------------------------------


def point_to_json(point: RestoreTarget) -> dict[str, Any]:
    return {
        "kind": point.kind,
        "time": point.time.astimezone(dt.UTC).isoformat() if point.time else None,
        "lsn": point.lsn,
        "xid": point.xid,
        "name": point.name,
        "label": point.label,
        "exclusive": point.exclusive,
    }


def restore_argv(fleet: Fleet, req: CloneRequest, *, port: int, now: dt.datetime) -> list[str]:
    """`pgbackrest restore` of the source's repo into the target's data directory, run
    without a shell. --archive-mode=off: the copy must never archive into the source's
    stanza (pitfall 1); --recovery-option=port: the source's port stays in the restored
    postgresql.conf, this override persists after the promotion (pitfall 10)."""
    options = local_restore_argv(
        req.point,
        now=now,
        repo=req.repo,
        db_include=req.db_include,
        process_max=req.process_max,
        pg_path=str(fleet.pgdata(req.target.name)),
    )
    return [
        PGBACKREST,
        f"--config={fleet.config_path(req.source.name)}",
        f"--stanza={STANZA}",
        *options,
        "--archive-mode=off",
        f"--recovery-option=port={port}",
        "restore",
    ]


def describe_point(point: RestoreTarget, argv: list[str], source: str) -> str:
    """How far WAL replay goes, in words; the target value as pgBackRest gets it."""
    if point.kind == "latest":
        return (
            "Replay all the archived WAL and promote: the latest archived state (what "
            f"{source} has not archived yet is not included)"
        )
    if point.kind in ("set", "immediate"):
        return "Stop as soon as the backup is consistent and promote"
    value = next(a.split("=", 1)[1] for a in argv if a.startswith("--target="))
    what = {"time": "", "lsn": "LSN ", "xid": "transaction ", "name": "restore point "}
    bound = "" if point.kind == "name" else (" (exclusive)" if point.exclusive else " (inclusive)")
    return f"Replay WAL to {what[point.kind]}{value}{bound} and promote"


def plan_steps(
    fleet: Fleet, req: CloneRequest, argv: list[str], *, port: int, port_fixed: bool
) -> tuple[str, ...]:
    source, target, repo = req.source.name, req.target.name, req.repo
    if req.point.label:
        backup = f"backup set {req.point.label}"
    elif req.point.kind in ("latest", "immediate"):
        backup = "the newest backup"
    else:
        backup = "the newest backup before the target"
    steps = [
        f"Restore {backup} from {source}'s {repo} into a new data directory "
        f"{fleet.pgdata(target)}, with archiving off so the copy never writes into "
        f"{source}'s repo",
    ]
    if req.db_include:
        steps.append(
            f"Restore only the database(s) {', '.join(req.db_include)}: the others come back "
            "as empty placeholders, to be dropped"
        )
    where = f"port {port}" if port_fixed else f"the next free port (now {port})"
    steps.append(f"Start {target} on {where}")
    steps.append(describe_point(req.point, argv, source))
    if req.db_include:
        steps.append(f"Drop the databases of {target} that were not included")
    if req.scratch:
        steps.append(
            f"Leave {target} as restored, with archiving off: a drill's scratch copy has no "
            "repo and never writes to any"
        )
        return tuple(steps)
    steps += [
        f"Create {target}'s own stanza in its own repo ({fleet.repo_path(target)}), "
        f"archive there (a fast restart turns archiving on) and check it — it never "
        f"archives into {source}'s repo",
        f"Take {target}'s first full backup",
    ]
    return tuple(steps)


# -- the restored data directory and the server log -------------------------------------------


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under path, like `du -s --block-size=1` (the sparse files of
    databases left out by --db-include count for what they really use)."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue
    return total


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_since(path: Path, offset: int, limit: int = 200_000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def server_fatal(log: str) -> str:
    """The first FATAL or PANIC line of the server itself (not about a refused client)."""
    for line in log.splitlines():
        match = _FATAL_RE.search(line)
        if match and not _CONNECTION_NOISE.search(match.group(2)):
            return f"{match.group(1)}: {match.group(2).strip()}"
    return ""


def explain_fatal(fatal: str, *, source: str, repo: str) -> str:
    for text, why in _EXPLAINED:
        if text in fatal:
            return f"{why.format(source=source, repo=repo)} (PostgreSQL: {fatal})"
    return f"PostgreSQL stopped during recovery: {fatal}"


# -- making the copy an independent cluster ---------------------------------------------------


def databases_to_drop(fleet: Fleet, record: ClusterRecord, included: Iterable[str]) -> list[str]:
    """Every database of the restored cluster that --db-include left out (pitfall 11)."""
    rows = query(fleet, record, "select datname from pg_database order by datname")
    keep = SYSTEM_DATABASES | set(included)
    return [str(name) for (name,) in rows if name not in keep]


def drop_databases(fleet: Fleet, record: ClusterRecord, names: Iterable[str]) -> None:
    for name in names:
        statement = pgsql.SQL("drop database if exists {}").format(pgsql.Identifier(name))
        query(fleet, record, statement)


def archive_command(fleet: Fleet, name: str) -> str:
    return f"{PGBACKREST} --config={fleet.config_path(name)} --stanza={STANZA} archive-push %p"


def make_independent(fleet: Fleet, record: ClusterRecord) -> None:
    """The target's own postgresql.conf block and ALTER SYSTEM settings: no recovery
    leftovers (pitfall 9), archiving on into the target's own stanza. Takes effect after
    a restart (archive_mode). Safe to repeat."""
    for name in RECOVERY_SETTINGS:
        query(fleet, record, pgsql.SQL("alter system reset {}").format(pgsql.Identifier(name)))
    query(fleet, record, "alter system set archive_mode = 'on'")
    command = pgsql.Literal(archive_command(fleet, record.name))
    query(fleet, record, pgsql.SQL("alter system set archive_command = {}").format(command))
    # The restored postgresql.conf still names the source's port and archive_command; the
    # ALTER SYSTEM values win, but the file should not say otherwise to someone reading it.
    conf = fleet.pgdata(record.name) / "postgresql.conf"
    text = conf.read_text()
    head = text.split(f"\n{CONF_MARKER}\n", 1)[0]
    fleet.write_file(conf, head + fleet.postgresql_conf(record, PGBACKREST), mode=0o600)
    # The new timeline's history file was written while archiving was off; mark it ready so
    # the archiver puts it into the target's own repo with the rest.
    wal = fleet.pgdata(record.name) / "pg_wal"
    for history in wal.glob("*.history"):
        status = wal / "archive_status"
        if not any((status / f"{history.name}{s}").exists() for s in (".ready", ".done")):
            fleet.write_file(status / f"{history.name}.ready", "", mode=0o600)


def setting(fleet: Fleet, record: ClusterRecord, name: str) -> str:
    rows = query(fleet, record, "select current_setting(%s)", params=(name,))
    return str(rows[0][0])


def restart(runner: Runner, fleet: Fleet, record: ClusterRecord) -> None:
    """Fast restart (archive_mode needs one), waiting until it accepts connections."""
    argv = [
        str(runner.bindir / "pg_ctl"),
        *"restart -m fast -w -t 120 -D".split(),
        str(fleet.pgdata(record.name)),
        "-l",
        str(fleet.server_log(record.name)),
    ]
    runner.run(argv, what="pg_ctl restart", timeout=150, new_session=True)


def start_argv(runner: Runner, fleet: Fleet, record: ClusterRecord) -> list[str]:
    """pg_ctl start -W: returns once the postmaster is forked; recovery goes on after."""
    return [
        str(runner.bindir / "pg_ctl"),
        *"start -W -D".split(),
        str(fleet.pgdata(record.name)),
        "-l",
        str(fleet.server_log(record.name)),
    ]


def start_no_wait(runner: Runner, fleet: Fleet, record: ClusterRecord) -> None:
    runner.run(start_argv(runner, fleet, record), what="pg_ctl start", timeout=60,
               new_session=True)


def check_operation_id(operation_id: str, longest_suffix: int) -> None:
    """Operation ids name job files and backup annotations (at most 64 characters)."""
    limit = 64 - longest_suffix
    if not isinstance(operation_id, str) or not re.fullmatch(
        rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{limit - 1}}}", operation_id
    ):
        raise PermanentError(
            f"{operation_id!r} cannot identify a clone: use 1 to {limit} letters, digits "
            "and . _ : -, starting with a letter or digit."
        )


# -- records and results ---------------------------------------------------------------------


def taken(name: str) -> str:
    return (
        f"A cluster named {name} already exists (or its data, repo or job files do): "
        "choose another name. Nothing was changed."
    )


def clone_of(req: CloneRequest) -> dict[str, Any]:
    """What identifies the clone in cluster.json; compared on every later call."""
    return {
        "source": req.source.name,
        "repo": req.repo,
        "operation_id": req.operation_id,
        "point": point_to_json(req.point),
        "db_include": sorted(set(req.db_include)),
        "process_max": req.process_max,
        # Only when set, so the records of clones made before drills compare equal.
        **({"scratch": True} if req.scratch else {}),
    }


def result(record: ClusterRecord, progress: dict[str, Any], label: str) -> dict[str, str]:
    """JobStatus.result of a finished clone (strings: JobStatus.result is dict[str, str])."""
    restore = progress["restore"]
    seconds = max(restore["ended_at"] - restore["started_at"], 0.001)
    recovery = progress["promoted_at"] - progress["start"]["at"]
    return {
        "port": str(record.port),
        "restore_seconds": f"{seconds:.1f}",
        "recovery_seconds": f"{recovery:.1f}",
        "restored_bytes": str(restore["bytes"]),
        "throughput_mib_s": f"{restore['bytes'] / seconds / 2**20:.1f}",
        "first_backup": label,
        "dropped_databases": ", ".join(progress.get("dropped", ())),
    }
