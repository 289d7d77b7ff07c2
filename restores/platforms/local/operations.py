"""What the operations on an existing local cluster share (in-place restore, standby,
promotion: inplace.py, standby.py): the per-cluster lock, progress files keyed by operation
id, starting a server and watching it come up, and WAL position arithmetic.

Progress lives in jobs/<cluster>/<operation_id>-<kind>.progress (JSON). Not `.json`: that
suffix is the job records' (jobs.py), which `terminate_all` reads as such.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..base import JobStatus, PermanentError, TransientError
from . import clone_steps as steps
from .database import query
from .fleet import ClusterRecord, Fleet, validate_cluster_name
from .proc import Runner

# A server not running this long after `pg_ctl start`, with no FATAL line, is started again.
START_GRACE_SECONDS = 15.0
START_ATTEMPTS = 3


def check_operation_id(operation_id: str) -> None:
    limit = 64 - len("-in-place-restore")
    if not isinstance(operation_id, str) or not re.fullmatch(
        rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{limit - 1}}}", operation_id
    ):
        raise PermanentError(
            f"{operation_id!r} cannot identify an operation: use 1 to {limit} letters, digits "
            "and . _ : -, starting with a letter or digit."
        )


def check_ref(namespace: str, expected: str, name: str) -> None:
    if namespace != expected:
        raise PermanentError(
            f"This platform's clusters are in namespace {expected!r}, not {namespace!r}."
        )
    validate_cluster_name(name)


# -- the per-cluster lock --------------------------------------------------------------------


@contextlib.contextmanager
def cluster_lock(fleet: Fleet, name: str, *, blocking: bool) -> Iterator[bool]:
    """flock on clusters/<name>/.clone.lock: True when held (always, if blocking).

    The same file as a clone's lock (clone.py) and the one cluster_destroy waits for, so a
    clone step, an in-place restore step, a standby or promotion step and a destroy of one
    cluster never run at once."""
    path = fleet.cluster_dir(name) / ".clone.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fleet.chown(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


# -- progress files ----------------------------------------------------------------------------


def progress_path(fleet: Fleet, cluster: str, operation_id: str, kind: str) -> Path:
    return fleet.jobs_dir(cluster) / f"{operation_id}-{kind}.progress"


def load_progress(fleet: Fleet, cluster: str, operation_id: str, kind: str) -> dict[str, Any]:
    try:
        return json.loads(progress_path(fleet, cluster, operation_id, kind).read_text())
    except (OSError, ValueError):
        return {}


def save_progress(
    fleet: Fleet, cluster: str, operation_id: str, kind: str, progress: dict[str, Any]
) -> None:
    fleet.make_dir(fleet.jobs_dir(cluster))
    fleet.write_file(progress_path(fleet, cluster, operation_id, kind), json.dumps(progress))


# -- the server ------------------------------------------------------------------------------


def running(runner: Runner, fleet: Fleet, record: ClusterRecord) -> bool:
    """pg_ctl status: 0 running, 3 not running, 4 no usable data directory."""
    pgdata = fleet.pgdata(record.name)
    if not (pgdata / "PG_VERSION").exists():
        return False
    argv = [str(runner.bindir / "pg_ctl"), "status", "-D", str(pgdata)]
    return runner.run(argv, what="pg_ctl status", check=False, timeout=30).returncode == 0


def stop_fast(runner: Runner, fleet: Fleet, record: ClusterRecord) -> None:
    """Fast shutdown, waiting until it is down (a no-op on a stopped server)."""
    if not running(runner, fleet, record):
        return
    pgdata = str(fleet.pgdata(record.name))
    argv = [str(runner.bindir / "pg_ctl"), *"stop -m fast -w -t 120 -D".split(), pgdata]
    runner.run(argv, what="pg_ctl stop", timeout=150)


def switch_wal(fleet: Fleet, record: ClusterRecord) -> None:
    """Best effort: close the current WAL segment of a running primary so the archiver
    (which a clean shutdown waits for) puts its last commits into the repo (pitfall 7)."""
    with contextlib.suppress(PermanentError, TransientError):
        query(fleet, record, "select pg_switch_wal() where not pg_is_in_recovery()")


def unarchived_segments(fleet: Fleet, record: ClusterRecord) -> list[str]:
    """WAL files of a stopped server that are ready for the archiver but not archived."""
    status = fleet.pgdata(record.name) / "pg_wal" / "archive_status"
    return sorted(p.name.removesuffix(".ready") for p in status.glob("*.ready"))


def watch_start(
    runner: Runner,
    fleet: Fleet,
    record: ClusterRecord,
    progress: dict[str, Any],
    save: Callable[[], None],
    explain: Callable[[str], str],
    *,
    log_from_start: bool = False,
    started: str = ".",
) -> tuple[JobStatus | None, str]:
    """Start the server without waiting (once, then again after a stop that logged no
    FATAL, at most START_ATTEMPTS times) and watch it. Returns (status, "") while it is
    starting: a running JobStatus to report; (None, "") once it runs; (None, why) when it
    stopped with a FATAL line (`explain` turns that line into a sentence) or does not stay
    up. progress["start"]["tail"] then holds the end of the server log. `log_from_start`:
    the first start's lines are read from the log's beginning (a restore job that started the
    server wrote there already); `started` ends the sentence that says it was started."""
    start = progress.get("start")
    if start is None:
        return _start(runner, fleet, record, progress, save, attempts=0,
                      offset=0 if log_from_start else None, started=started), ""
    if running(runner, fleet, record):
        return None, ""
    log = fleet.server_log(record.name)
    start["tail"] = steps.log_since(log, max(start["log_offset"], steps.log_size(log) - 4000))
    fatal = steps.server_fatal(steps.log_since(log, start["log_offset"]))
    if fatal:
        return None, explain(fatal)
    if time.time() - start["at"] < START_GRACE_SECONDS:
        return JobStatus("running", f"PostgreSQL {record.name} is starting."), ""
    if start["attempts"] >= START_ATTEMPTS:
        return None, f"PostgreSQL {record.name} does not stay up, and its log says no FATAL."
    return _start(runner, fleet, record, progress, save, attempts=start["attempts"],
                  started=started), ""


def _start(
    runner: Runner,
    fleet: Fleet,
    record: ClusterRecord,
    progress: dict[str, Any],
    save: Callable[[], None],
    *,
    attempts: int,
    offset: int | None = None,
    started: str = ".",
) -> JobStatus:
    """pg_ctl start -W unless it runs already (a call that died after starting it). Only
    log lines from here on (from `offset`) can say why it stopped."""
    if offset is None:
        offset = steps.log_size(fleet.server_log(record.name))
    if not running(runner, fleet, record):
        steps.start_no_wait(runner, fleet, record)
    progress["start"] = {"at": time.time(), "log_offset": offset, "attempts": attempts + 1}
    save()
    return JobStatus("running", f"Started PostgreSQL {record.name} on port {record.port}{started}")


def timeline(fleet: Fleet, record: ClusterRecord) -> int:
    """The timeline of the last checkpoint (run CHECKPOINT first after a promotion)."""
    ((tli,),) = query(fleet, record, "select timeline_id from pg_control_checkpoint()")
    return int(tli)


# -- WAL positions -----------------------------------------------------------------------------


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def segment_number(segment: str, segment_size: int) -> int:
    """The position of a WAL segment file name (its timeline ignored)."""
    per_id = 0x1_0000_0000 // segment_size
    return int(segment[8:16], 16) * per_id + int(segment[16:24], 16)


def segment_name(timeline_id: int, number: int, segment_size: int) -> str:
    per_id = 0x1_0000_0000 // segment_size
    return f"{timeline_id:08X}{number // per_id:08X}{number % per_id:08X}"
