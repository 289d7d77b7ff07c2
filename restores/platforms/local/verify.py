"""A drill's checks of a restored local cluster: read-only queries over the unix socket,
and the source's system identifier from its control file (pg_controldata), so the source
server is not even connected to."""

from __future__ import annotations

import datetime as dt
import re

from ..base import DatabaseFacts, PermanentError, TransientError, Verification
from ..verify_sql import DATABASES, SERVER, USER_TABLES
from .database import query
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

