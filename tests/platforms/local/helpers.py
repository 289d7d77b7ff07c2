"""What the local platform's integration tests do again and again: drive a job to its end,
make the newest WAL archived, wait until the server's clock has passed a moment, list a
database's tables; and the system pgBackRest paths the fleet must leave alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable

from restores.platforms.base import CloneRequest, ClusterRef, JobStatus
from restores.platforms.local import LocalPlatform

TERMINAL = ("succeeded", "failed")

# Where pgBackRest writes when it is not told otherwise. The fleet must leave them alone.
SYSTEM_PATHS = (
    "/etc/pgbackrest",
    "/etc/pgbackrest.conf",
    "/var/log/pgbackrest",
    "/tmp/pgbackrest",
    "/var/spool/pgbackrest",
    "/var/lib/pgbackrest",
)


def snapshot(paths: tuple[str, ...]) -> dict[str, list[tuple[str, int, int]] | None]:
    """For each path: None if absent, else (relative path, mtime_ns, size) of everything
    in it, itself included."""
    result: dict[str, list[tuple[str, int, int]] | None] = {}
    for top in paths:
        if not os.path.lexists(top):
            result[top] = None
            continue
        entries = [top]
        if os.path.isdir(top):
            for directory, dirs, files in os.walk(top):
                entries += [os.path.join(directory, n) for n in dirs + files]
        stats = ((p, os.lstat(p)) for p in sorted(entries))
        result[top] = [(os.path.relpath(p, top), s.st_mtime_ns, s.st_size) for p, s in stats]
    return result



def drive(
    advance: Callable[[], JobStatus], *, calls_per_poll: int = 1, timeout: float = 180
) -> list[JobStatus]:
    """Call advance until terminal (each poll `calls_per_poll` times in a row)."""
    seen: list[JobStatus] = []
    deadline = time.monotonic() + timeout
    while True:
        for _ in range(calls_per_poll):
            seen.append(advance())
        if seen[-1].state in TERMINAL:
            return seen
        assert time.monotonic() < deadline, f"still {seen[-1].state}: {seen[-1].message}"
        time.sleep(0.2)



@dataclasses.dataclass
class Run:
    statuses: list[JobStatus]
    cluster_states: list[tuple[str, str]]  # (role, state) of cluster_status after each call

    @property
    def last(self) -> JobStatus:
        return self.statuses[-1]



def run_clone(
    local: LocalPlatform, req: CloneRequest, *, calls_per_poll: int = 1, timeout: float = 180
) -> Run:
    """clone_advance until terminal (each poll `calls_per_poll` times in a row)."""
    run = Run([], [])
    deadline = time.monotonic() + timeout
    while True:
        for _ in range(calls_per_poll):
            run.statuses.append(local.clone_advance(req))
        status = local.cluster_status(req.target)
        run.cluster_states.append((status.role, status.state))
        if run.last.state in TERMINAL:
            return run
        assert time.monotonic() < deadline, f"clone still {run.last.state}: {run.last.message}"
        time.sleep(0.2)



def flush_wal(local: LocalPlatform, cluster: ClusterRef) -> str:
    """Switch WAL and wait until the switched segment is archived; the segment."""
    ((segment,),) = local.sql(cluster, "select pg_walfile_name(pg_current_wal_lsn())")
    local.sql(cluster, "select pg_switch_wal()")
    deadline = time.monotonic() + 60
    while (local.sql(cluster, "select last_archived_wal from pg_stat_archiver")[0][0] or "") < (
        segment
    ):
        assert time.monotonic() < deadline, f"{segment} was not archived"
        time.sleep(0.2)
    return segment



def wait_until_after(local: LocalPlatform, cluster: ClusterRef, when: dt.datetime) -> None:
    while local.sql(cluster, "select clock_timestamp()")[0][0] <= when:
        time.sleep(0.1)



def tables(local: LocalPlatform, cluster: ClusterRef, database: str) -> list[str]:
    rows = local.sql(
        cluster, "select tablename from pg_tables where schemaname = 'public'", database=database
    )
    return sorted(name for (name,) in rows)
