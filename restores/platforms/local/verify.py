"""A drill's checks of a restored local cluster: read-only queries over the unix socket,
and the source's system identifier from its control file (pg_controldata), so the source
server is not even connected to."""

from __future__ import annotations

import datetime as dt
import re
import shlex

from ..base import (
    AmcheckResult,
    DatabaseFacts,
    PermanentError,
    QueryResult,
    TransientError,
    Verification,
)
from ..verify_sql import DATABASES, SERVER, USER_TABLES
from .database import connect_hint, query
from .fleet import ClusterRecord, Fleet
from .proc import Runner

_SYSTEM_ID_RE = re.compile(r"^Database system identifier:\s*(\d+)", re.MULTILINE)


def verify(fleet: Fleet, runner: Runner, record: ClusterRecord,
           source: ClusterRecord | None) -> Verification:
    """The restored cluster's version, recovery state, system identifier, databases with
    their sizes and user tables, and its last replayed commit. TransientError while the
    server cannot be reached."""
    ((version, in_recovery, system_id, replayed),) = query(fleet, record, SERVER)
    databases = []
    for name, size in query(fleet, record, DATABASES):
        ((tables,),) = query(fleet, record, USER_TABLES, database=name)
        databases.append(DatabaseFacts(str(name), int(size), int(tables)))
    return Verification(
        server_version=str(version).split()[0],
        system_identifier=str(system_id),
        source_system_identifier=source_system_id(fleet, runner, source) if source else "",
        in_recovery=bool(in_recovery),
        databases=tuple(databases),
        last_replayed_commit=replayed.astimezone(dt.UTC) if replayed else None,
        command="\n".join([SERVER, DATABASES, USER_TABLES + "  -- in each database",
                           "pg_controldata <source data directory>"]),
    )


def source_system_id(fleet: Fleet, runner: Runner, source: ClusterRecord) -> str:
    """The source's system identifier from its control file, running or not; "" when the
    file cannot be read (the source's data directory is gone)."""
    pgdata = fleet.pgdata(source.name)
    if not (pgdata / "global" / "pg_control").exists():
        return ""
    argv = [str(runner.bindir / "pg_controldata"), str(pgdata)]
    try:
        out = runner.run(argv, what="pg_controldata", timeout=30).stdout
    except (PermanentError, TransientError):
        return ""
    match = _SYSTEM_ID_RE.search(out)
    return match.group(1) if match else ""



def read_only_query(fleet: Fleet, record: ClusterRecord, sql: str, *, database: str,
                    timeout_s: float) -> QueryResult:
    """A drill's SQL check: one statement, read-only, under a statement timeout."""
    rows = query(fleet, record, sql, database=database, read_only_timeout=timeout_s)
    text = tuple(tuple(None if v is None else _text(v) for v in row) for row in rows)
    hint = connect_hint(fleet, record).rsplit(" ", 1)[0]
    options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
    return QueryResult(text, command=f"PGOPTIONS={shlex.quote(options)} {hint} -d "
                                     f"{shlex.quote(database)} -c {shlex.quote(sql)}")


def _text(value: object) -> str:
    """A value as psql would print it (instants in ISO form, booleans t/f)."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


# pg_amcheck's exit status: 0 nothing found, 2 corruption found; anything else an error.
AMCHECK_CORRUPT = 2


def amcheck(fleet: Fleet, runner: Runner, record: ClusterRecord, *, database: str,
            relations: tuple[str, ...]) -> AmcheckResult:
    argv = [str(runner.bindir / "pg_amcheck"), "-h", str(fleet.run_dir), "-p", str(record.port),
            "-U", "postgres", "--install-missing", "--heapallindexed", "-d", database]
    for relation in relations:
        argv += ["-r", relation]
    proc = runner.run(argv, what="pg_amcheck", timeout=1800, check=False)
    findings = (proc.stdout + proc.stderr).strip()
    if proc.returncode not in (0, AMCHECK_CORRUPT):
        raise PermanentError(f"pg_amcheck could not check {database}: "
                             f"{findings.splitlines()[-1] if findings else proc.returncode}",
                             detail=f"$ {shlex.join(argv)}\n{findings}")
    return AmcheckResult(ok=proc.returncode == 0 and not findings, findings=findings,
                         command=shlex.join(argv))
