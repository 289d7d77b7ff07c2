"""The one skeleton of the local platform's long jobs: a clone, a standby's creation, an
in-place restore and a promotion each run as phases recorded on disk, advanced one call at a
time by whichever process asks next.

    lock     clusters/<name>/.clone.lock (operations.cluster_lock), not blocking: a call that
             finds it held only reports
    load     the job's progress (and, for clones and standbys, the cluster record's `state`)
    launch   the detached pgBackRest restore (jobs.py), started at most once per job id
    follow   the phase's handler does the next missing piece and says where it stands
    report   from the files alone: running (in words), failed (why), succeeded (the result)
    fail     a PermanentError in a handler records the failure and releases the cluster

A machine says where its phase lives (`phase_of`), how to save and mark a failure, what its
phases do (`handlers`) and how it reports; `drive` and `restore_job` are shared.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..base import JobStatus, PermanentError
from ..pgbackrest import explain_error
from . import operations as ops
from .backrest import Backrest
from .fleet import ClusterRecord, Fleet
from .proc import Runner

Handler = Callable[[Any, ClusterRecord, dict[str, Any]], JobStatus]
DONE, FAILED = "done", "failed"
NOT_EMPTY = (
    "{pgdata} is not empty, but the restore that wrote it was not recorded: an earlier attempt "
    "was interrupted. Destroy {name} and try again."
)


@dataclasses.dataclass(frozen=True)
class Restored:
    """A restore job that succeeded: when it started and ended (epoch seconds)."""

    started_at: float
    ended_at: float

    @property
    def timings(self) -> dict[str, float]:
        return {"started_at": self.started_at, "ended_at": self.ended_at}


class PhaseMachine:
    """Shared by Cloner, Standbys, InPlaceRestorer and Promoter."""

    noun = "job"  # "Another call is advancing this <noun>."
    # Its progress file: jobs/<cluster>/<operation id>-<kind>.progress (operations.py).
    kind = ""

    def __init__(self, fleet: Fleet, runner: Runner, backrest: Backrest, *, namespace: str,
                 port_base: int = 0) -> None:
        self.fleet = fleet
        self.runner = runner
        self.backrest = backrest
        self.namespace = namespace
        self.port_base = port_base

    # -- what each machine says about itself --------------------------------------------

    def phase_of(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        """The current phase, DONE or FAILED."""
        raise NotImplementedError

    def handlers(self) -> dict[str, Handler]:
        """The phases still under way, each with what does its next piece."""
        raise NotImplementedError

    def load(self, name: str, operation_id: str) -> dict[str, Any]:
        return ops.load_progress(self.fleet, name, operation_id, self.kind)

    def save(self, name: str, operation_id: str, progress: dict[str, Any]) -> None:
        ops.save_progress(self.fleet, name, operation_id, self.kind, progress)

    def mark_failed(self, record: ClusterRecord, operation_id: str,
                    progress: dict[str, Any]) -> None:
        """Record that the job failed (its progress is saved here) and release the cluster."""
        raise NotImplementedError

    def succeeded(self, record: ClusterRecord, progress: dict[str, Any]) -> JobStatus:
        raise NotImplementedError

    def check_progress(self, req: Any, progress: dict[str, Any]) -> None:
        """PermanentError when the job on disk was started with other parameters."""

    def words(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        """A sentence for a job under way."""
        raise NotImplementedError

    # -- the shared skeleton ---------------------------------------------------------------

    def drive(self, req: Any, name: str, operation_id: str,
              begin: Callable[[ClusterRecord], dict[str, Any] | JobStatus] | None = None
              ) -> JobStatus:
        """Lock, load, (begin: the first piece, or a refusal before anything changes), then
        the current phase's handler; a PermanentError there fails the job."""
        with ops.cluster_lock(self.fleet, name, blocking=False) as held:
            record = self.fleet.record(name)
            if record is None:
                raise PermanentError(f"The local cluster {name!r} was destroyed.")
            progress = self.load(name, operation_id)
            if not held:
                return self.report(record, progress, busy=True)
            if begin is not None and not progress:
                started = begin(record)
                if isinstance(started, JobStatus):
                    return started
                progress = started
                record = self.fleet.record(name) or record
            elif progress:
                self.check_progress(req, progress)
            handler = self.handlers().get(self.phase_of(record, progress))
            if handler is None:
                return self.report(record, progress)
            try:
                return handler(req, record, progress)
            except PermanentError as exc:
                return self.fail(record, operation_id, progress, exc.message, exc.detail)

    def finish(self, record: ClusterRecord, operation_id: str, progress: dict[str, Any],
               result: dict[str, str]) -> JobStatus:
        """The last piece is done: the result recorded, the cluster released."""
        progress["result"] = result
        progress["phase"] = DONE
        progress["ended_at"] = time.time()
        self.save(record.name, operation_id, progress)
        self.release(record.name, operation_id)
        return self.report(self.fleet.record(record.name) or record, progress)

    def release(self, name: str, operation_id: str) -> None:
        """Give the cluster back once the job ended (its record's `busy`, if it set one)."""
        record = self.fleet.record(name)
        if record is not None and (record.busy or {}).get("operation_id") == operation_id:
            self.fleet.save_record(dataclasses.replace(record, busy=None))

    def fail(self, record: ClusterRecord, operation_id: str, progress: dict[str, Any],
             message: str, detail: str = "") -> JobStatus:
        progress["failure"] = {"message": message, "detail": detail, "at": time.time()}
        progress["failed_in"] = self.phase_of(record, progress)
        self.mark_failed(record, operation_id, progress)
        return JobStatus("failed", message, detail=detail)

    def report(self, record: ClusterRecord, progress: dict[str, Any],
               busy: bool = False) -> JobStatus:
        phase = self.phase_of(record, progress)
        if phase == FAILED:
            failure = progress.get("failure", {})
            return JobStatus("failed", failure.get("message", ""), detail=failure.get("detail", ""))
        if phase == DONE:
            return self.succeeded(record, progress)
        prefix = f"Another call is advancing this {self.noun}. " if busy else ""
        return JobStatus("running", prefix + self.words(record, progress))

    def watch_start(self, record: ClusterRecord, operation_id: str, progress: dict[str, Any],
                    explain: Callable[[str], str], **options: Any) -> tuple[JobStatus | None, str]:
        """operations.watch_start for this job: its progress saved as the start is recorded."""
        return ops.watch_start(self.runner, self.fleet, record, progress,
                               lambda: self.save(record.name, operation_id, progress), explain,
                               **options)

    def restore_job(self, name: str, job_id: str, *, argv: Callable[[], Sequence[str]],
                    summary: str, running: str, then: Callable[[], Sequence[str]] | None = None,
                    fresh_data: bool = True, failed_suffix: str = "") -> JobStatus | Restored:
        """Launch the detached pgBackRest restore once, follow it: a running status, the
        timings once it succeeded, PermanentError (with its log) when it failed.
        `fresh_data`: it restores into an empty data directory (a new cluster), which must
        not hold files a launch that was never recorded left."""
        jobs = self.backrest.jobs
        view = jobs.view(name, job_id)
        if view is None or view.record is None or not view.record.pid:
            # Not launched. Launches happen only under the cluster's lock, so a claim without
            # a pid is a launcher that died: jobs.start relaunches it after a grace period,
            # which is safe only while nothing has been restored.
            if fresh_data:
                pgdata = self.fleet.pgdata(name)
                if view is not None and pgdata.exists() and any(pgdata.iterdir()):
                    raise PermanentError(NOT_EMPTY.format(pgdata=pgdata, name=name))
                self.fleet.make_dir(pgdata, 0o700)
                pgdata.chmod(0o700)
            launched = jobs.start(name, job_id, argv(), summary, then() if then else ())
            return JobStatus("running", launched.summary)
        if view.rc is None and view.alive:
            return JobStatus("running", f"{running} (pid {view.record.pid}).")
        if view.rc is None:
            raise PermanentError("The restore process ended without reporting a result."
                                 + failed_suffix, detail=view.log[-4000:])
        if view.rc != 0:
            why = explain_error(view.log) or f"pgBackRest exited with code {view.rc}."
            raise PermanentError(f"The restore failed. {why}{failed_suffix}",
                                 detail=view.log[-4000:])
        rc_path = self.fleet.jobs_dir(name) / f"{job_id}.rc"
        return Restored(view.record.created_at, rc_path.stat().st_mtime)


class NewClusterMachine(PhaseMachine):
    """A machine that makes a new cluster (a clone, a standby): its phase is the record's
    `state` (restoring → … → "" once done, or failed), and its first piece is the record."""

    def phase_of(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        if record.state == FAILED:
            return FAILED
        if record.state == "" and "result" in progress:
            return DONE
        return record.state

    def mark_failed(self, record: ClusterRecord, operation_id: str,
                    progress: dict[str, Any]) -> None:
        self.save(record.name, operation_id, progress)
        self.fleet.save_record(dataclasses.replace(record, state=FAILED))

    def create_record(self, name: str, operation_id: str, source: ClusterRecord, *,
                      made_by: Callable[[ClusterRecord], str | None],
                      **fields: Any) -> tuple[ClusterRecord | None, bool]:
        """(the new cluster's record, whether this call created it), its port allocated
        under the fleet lock; (None, False) when something else has the name. `made_by`
        reads the operation id off an existing record (one of ours, from an earlier call)."""
        fleet = self.fleet
        with fleet.lock():
            existing = fleet.record(name)
            if existing is not None:
                return (existing if made_by(existing) == operation_id else None), False
            # An empty cluster directory is what a call that died before writing the record
            # leaves behind; it holds nothing to protect.
            cluster_dir = fleet.cluster_dir(name)
            in_the_way = fleet.in_the_way(name)
            if in_the_way and (in_the_way != [cluster_dir] or _holds_files(cluster_dir)):
                return None, False
            record = dataclasses.replace(
                fleet.new_record(name, port_base=self.port_base, pg_version=source.pg_version),
                state="restoring", **fields,
            )
            fleet.make_dir(fleet.cluster_dir(record.name))
            if not fleet.create_record(record):
                return None, False
            return record, True


def _holds_files(directory: Path) -> bool:
    """Anything in directory but the temporary files Fleet.create_record writes."""
    return any(not p.name.startswith(".cluster.json.") for p in directory.iterdir())
