"""Background pgBackRest backups with a record per console operation.

A backup runs for minutes; a Celery step must not block on it, and a worker that dies must
not kill it. So `start` launches pgBackRest in its own session and returns at once, and the
state lives in files under jobs/<cluster>/:

    <operation_id>.json   the record: claimed with O_CREAT|O_EXCL, so one operation id can
                          start at most one backup however often (or concurrently) it retries
    <operation_id>.log    pgBackRest's stdout and stderr
    <operation_id>.rc     the exit code, written by the wrapper shell when pgBackRest ends
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..base import Applied, TransientError
from .fleet import Fleet
from .proc import Runner, process_alive, process_identity

# A record without a pid this old means the launcher died between claiming and starting.
LAUNCH_GRACE_SECONDS = 60.0
LOG_TAIL_BYTES = 16_000
# Arguments only, never interpolated: $1 is the rc file, the rest is the command. The rc is
# written to a temporary name and renamed, so a reader never sees an empty rc file.
# $1: the rc file; $2: a command line (shell-quoted, may be empty) run only when the job
# succeeds, before its rc is written; the rest: the job's argv.
RC_WRAPPER = (
    'rc_file=$1; then=$2; shift 2; "$@"; rc=$?; '
    'if [ "$rc" = 0 ] && [ -n "$then" ]; then eval "$then"; fi; '
    'echo "$rc" > "$rc_file.tmp" && mv -f "$rc_file.tmp" "$rc_file"'
)


@dataclasses.dataclass(frozen=True)
class JobRecord:
    operation_id: str
    summary: str
    command: str
    created_at: float
    pid: int | None = None
    pid_start: int | None = None  # /proc start time: tells our process from a reused pid


@dataclasses.dataclass(frozen=True)
class JobView:
    """What the files say about one job. record is None while the launcher is writing it."""

    record: JobRecord | None
    rc: int | None
    alive: bool
    log: str


class BackupJobs:
    def __init__(self, fleet: Fleet, runner: Runner) -> None:
        self.fleet = fleet
        self.runner = runner

    def _paths(self, cluster: str, operation_id: str) -> tuple[Path, Path, Path]:
        # Not with_suffix: an operation id may contain dots.
        base = self.fleet.jobs_dir(cluster)
        return (
            base / f"{operation_id}.json",
            base / f"{operation_id}.log",
            base / f"{operation_id}.rc",
        )

    def start(self, cluster: str, operation_id: str, argv: Sequence[str], summary: str,
              then: Sequence[str] = ()) -> Applied:
        """Launch argv for operation_id unless a record says it was already launched; either
        way return the Applied of the launch. operation_id must be filename-safe. `then`, if
        given, runs in the same detached job right after argv succeeds and before its rc is
        written (a restore starts its server without waiting for the next step)."""
        self.fleet.make_dir(self.fleet.jobs_dir(cluster))
        record_path, _, rc_path = self._paths(cluster, operation_id)
        record = JobRecord(operation_id, summary, shlex.join(argv), time.time())
        for _attempt in range(3):
            try:
                fd = os.open(record_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            except FileExistsError:
                existing = _load(record_path)
                if not _abandoned(record_path, existing):
                    return _applied(existing or record)
                # The launcher died before pgBackRest started: clear its claim and retry.
                # (Two retriers racing here could both relaunch; that needs a >60 s stale
                # record and simultaneous retries; pgBackRest's lock stops the second while the
                # first runs.)
                record_path.unlink(missing_ok=True)
                rc_path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                self.fleet.chown(handle.fileno())
                json.dump(dataclasses.asdict(record), handle)
            try:
                pid, started = self._launch(cluster, operation_id, argv, then)
            except TransientError:
                record_path.unlink(missing_ok=True)  # nothing runs: let a retry start at once
                raise
            self.fleet.write_file(
                record_path,
                json.dumps(dataclasses.asdict(record) | {"pid": pid, "pid_start": started}),
            )
            return _applied(record)
        raise TransientError(f"Could not claim the job record {record_path}; try again.")

    def _launch(self, cluster: str, operation_id: str, argv: Sequence[str],
                then: Sequence[str] = ()) -> tuple[int, int]:
        _, log_path, rc_path = self._paths(cluster, operation_id)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            self.fleet.chown(log_fd)
            proc = self.runner.spawn_detached(
                ["/bin/sh", "-c", RC_WRAPPER, "sh", str(rc_path),
                 shlex.join(then) if then else "", *argv],
                output_fd=log_fd,
            )
        except OSError as exc:
            raise TransientError(f"Could not start pgBackRest: {exc}") from exc
        finally:
            os.close(log_fd)
        # Reap it when it ends (no zombie, no ResourceWarning); the files carry the result.
        threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}").start()
        identity = process_identity(proc.pid)
        return proc.pid, identity[1] if identity else 0

    def view(self, cluster: str, operation_id: str) -> JobView | None:
        """The job's files, or None when no backup was ever claimed for operation_id."""
        record_path, log_path, rc_path = self._paths(cluster, operation_id)
        if not record_path.exists():
            return None
        record = _load(record_path)
        alive = bool(record and record.pid and process_alive(record.pid, record.pid_start))
        return JobView(record, _read_rc(rc_path), alive, _tail(log_path))

    def terminate_all(self, cluster: str, timeout: float = 15) -> None:
        """SIGTERM every running job of a cluster (each leads its own process group) and
        wait for them to end."""
        alive = []
        for record_path in self.fleet.jobs_dir(cluster).glob("*.json"):
            record = _load(record_path)
            if record and record.pid and process_alive(record.pid, record.pid_start):
                with contextlib.suppress(ProcessLookupError):  # it may end meanwhile
                    os.killpg(record.pid, signal.SIGTERM)
                alive.append(record)
        deadline = time.monotonic() + timeout
        while any(process_alive(r.pid or 0, r.pid_start) for r in alive):
            if time.monotonic() > deadline:
                raise TransientError(f"Backups of {cluster} did not stop within {timeout} s.")
            time.sleep(0.1)


def _applied(record: JobRecord) -> Applied:
    return Applied(summary=record.summary, command=record.command)


def _load(path: Path) -> JobRecord | None:
    """The record, or None when missing or still being written."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    fields = {f.name for f in dataclasses.fields(JobRecord)}
    return JobRecord(**{k: v for k, v in raw.items() if k in fields})


def _abandoned(path: Path, record: JobRecord | None) -> bool:
    if record is not None and record.pid:
        return False
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    return age > LAUNCH_GRACE_SECONDS


def _read_rc(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
