"""Clone / point-in-time recovery into a NEW local cluster, as a state machine on disk.

`advance` does the next missing piece and returns (the first call reserves the name and
launches the restore: nothing to wait for between them); the long parts (the restore, the
first backup) run detached through the job machinery of jobs.py. Everything it knows lives
in files, so a new process (a retried Celery task, a restarted worker) continues where the
last one stopped:

    clusters/<target>/cluster.json   created once with O_EXCL semantics (Fleet.create_record):
                                     port, `clone_of` (source, repo, operation id, point) and
                                     `state`: restoring → recovering → configuring →
                                     backing-up → "" (done) or failed
    clusters/<target>/clone.json     progress: restore timings and size, server start, the
                                     promotion, databases dropped, failure, result
    clusters/<target>/.clone.lock    flock: one advance at a time per clone; a concurrent call
                                     reports the state without doing anything
    jobs/<target>/<op>-restore.*     the detached `pgbackrest restore` (record, log, rc)
    jobs/<target>/<op>-first-backup.*  the first full backup

The pieces, in order:
  1. the record (port allocated under the fleet lock), unless the name is taken;
  2. `pgbackrest restore` of the source's repo into data/<target>, archiving off;
  3. `pg_ctl start` without waiting; a server that stops during recovery fails the clone
     with its FATAL line in plain words;
  4. wait until it accepts connections and is promoted;
  5. its own pgbackrest.conf, drop what --db-include left out, ALTER SYSTEM (no recovery
     leftovers, archive_mode=on into its own stanza), fast restart;
  6. CHECKPOINT, stanza-create and check in its own repo;
  7. its first full backup; then the clone has succeeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import shlex
import time
from typing import Any

from ..base import ClonePlan, CloneRequest, JobStatus, PermanentError, TransientError
from . import clone_steps as steps
from .backrest import REPOS
from .database import query
from .fleet import ClusterRecord, validate_cluster_name
from .operations import cluster_lock
from .phases import Handler, NewClusterMachine

RESTORE_SUFFIX = "-restore"
BACKUP_SUFFIX = "-first-backup"
IN_PROGRESS = ("restoring", "recovering", "configuring", "backing-up")


class Cloner(NewClusterMachine):
    noun = "clone"

    # -- validation and the plan ----------------------------------------------------------

    def _check(self, req: CloneRequest) -> None:
        """What can be checked about any request without reading the fleet."""
        steps.check_operation_id(req.operation_id, max(len(RESTORE_SUFFIX), len(BACKUP_SUFFIX)))
        for ref in (req.source, req.target):
            if ref.namespace != self.namespace:
                raise PermanentError(
                    f"This platform's clusters are in namespace {self.namespace!r}, not "
                    f"{ref.namespace!r}."
                )
            validate_cluster_name(ref.name)
        if req.repo not in REPOS:
            raise PermanentError(f"Local clusters have {', '.join(REPOS)}, not {req.repo!r}.")

    def _source(self, req: CloneRequest) -> ClusterRecord:
        """The source's record, after checking everything about the request that can be
        checked without touching anything; PermanentError when it cannot be cloned."""
        self._check(req)
        source = self.fleet.record(req.source.name)
        if source is None:
            raise PermanentError(f"There is no local cluster {req.source.name!r} to clone.")
        if not source.initialized or source.state:
            raise PermanentError(f"{source.name} is not finished yet: it cannot be cloned.")
        # Validates the target (and its time against now), the databases and process_max.
        steps.restore_argv(self.fleet, req, port=0, now=_now())
        return source

    def plan(self, req: CloneRequest) -> ClonePlan:
        self._source(req)
        record = self.fleet.record(req.target.name)
        mine = record is not None and _operation(record) == req.operation_id
        if self.fleet.in_the_way(req.target.name) and not mine:
            raise PermanentError(steps.taken(req.target.name))
        port = record.port if record and mine else self.fleet.next_port(self.port_base)
        argv = steps.restore_argv(self.fleet, req, port=port, now=_now())
        return ClonePlan(
            steps=steps.plan_steps(self.fleet, req, argv, port=port, port_fixed=mine),
            command=shlex.join(argv),
        )

    # -- the state machine ----------------------------------------------------------------

    def advance(self, req: CloneRequest) -> JobStatus:
        self._check(req)
        record = self.fleet.record(req.target.name)
        if record is None:
            # Only a clone that has not started needs its source now: once restored, a
            # clone finishes even if the source is gone.
            record, _ = self.create_record(req.target.name, req.operation_id, self._source(req),
                                           made_by=_operation, clone_of=steps.clone_of(req))
            if record is None:
                return JobStatus("failed", steps.taken(req.target.name))
            # On to the restore in this same call, under the lock like any later call: a
            # concurrent one that created nothing finds the lock held and only reports.
        if _operation(record) != req.operation_id:
            return JobStatus("failed", steps.taken(req.target.name))
        if record.clone_of != steps.clone_of(req):
            raise PermanentError(
                f"{record.name} is being cloned by operation {req.operation_id} with other "
                "parameters (source, repo, point or databases)."
            )
        return self.drive(req, record.name, req.operation_id)

    def handlers(self) -> dict[str, Handler]:
        return {"restoring": self._restore, "recovering": self._recover,
                "configuring": self._independent, "backing-up": self._independent}

    def _independent(self, req: CloneRequest, record: ClusterRecord,
                     progress: dict) -> JobStatus:
        if not self._running(record):  # promoted, then stopped (a reboot, a DBA)
            steps.start_no_wait(self.runner, self.fleet, record)
            return JobStatus("running", f"{record.name} was not running: starting it again.")
        if record.state == "configuring":
            return self._configure(req, record, progress)
        return self._first_backup(req, record, progress)

    # piece 2 -------------------------------------------------------------------------------

    def _restore(self, req: CloneRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        target = record.name
        outcome = self.restore_job(
            target, req.operation_id + RESTORE_SUFFIX,
            argv=lambda: steps.restore_argv(self.fleet, req, port=record.port, now=_now()),
            summary=f"Started pgBackRest: restore of {req.source.name}'s {req.repo} into {target}.",
            running=f"pgBackRest is restoring {req.source.name}'s {req.repo} into {target}",
            # The job starts the server as soon as the restore succeeds, as a DBA would type
            # the two commands: no step's poll between them. The recovering step below finds
            # it running (or starts it, should that start have failed).
            then=lambda: steps.start_argv(self.runner, self.fleet, record),
        )
        if isinstance(outcome, JobStatus):
            return outcome
        progress["restore"] = {**outcome.timings,
                               "bytes": steps.disk_usage(self.fleet.pgdata(target))}
        self.save(record.name, req.operation_id, progress)
        record = self._set_state(record, "recovering")
        return self._recover(req, record, progress)

    # pieces 3 and 4 --------------------------------------------------------------------------

    def _recover(self, req: CloneRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        status, why = self.watch_start(
            record, req.operation_id, progress,
            lambda fatal: steps.explain_fatal(fatal, source=req.source.name, repo=req.repo),
            log_from_start=True, started="; replaying WAL.",
        )
        if why:
            raise PermanentError(why, detail=progress.get("start", {}).get("tail", ""))
        if status is not None:
            return status
        try:
            ((in_recovery,),) = query(self.fleet, record, "select pg_is_in_recovery()")
        except TransientError:
            return JobStatus("running", f"{record.name} is starting and replaying WAL.")
        if in_recovery:
            return JobStatus("running", f"{record.name} is replaying WAL.")
        progress.setdefault("promoted_at", time.time())
        self.save(record.name, req.operation_id, progress)
        if req.scratch:
            return self._scratch_done(record, progress)
        self._set_state(record, "configuring")
        return JobStatus("running", f"{record.name} is promoted; making it independent next.")

    def _scratch_done(self, record: ClusterRecord, progress: dict) -> JobStatus:
        """A drill's scratch copy is done once promoted: no stanza, no archiving (the
        restore turned archive_mode off), no first backup; it never writes to any repo."""
        progress["result"] = {**steps.result(record, progress, ""), "scratch": "true",
                              "promoted_at": f"{progress['promoted_at']:.3f}"}
        self.save(record.name, "", progress)
        self.fleet.save_record(dataclasses.replace(record, state="", initialized=True))
        return self.report(self.fleet.record(record.name) or record, progress)

    # pieces 5 and 6 --------------------------------------------------------------------------

    def _configure(self, req: CloneRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        fleet = self.fleet
        if not progress.get("settings"):
            for path in fleet.pgbackrest_dirs(record.name).values():
                fleet.make_dir(path)
            fleet.make_dir(fleet.repo_path(record.name).parent, 0o700)
            fleet.write_file(fleet.config_path(record.name), fleet.pgbackrest_conf(record))
            if req.db_include and "dropped" not in progress:
                progress["dropped"] = steps.databases_to_drop(fleet, record, req.db_include)
                self.save(record.name, "", progress)
            steps.drop_databases(fleet, record, progress.get("dropped", ()))
            steps.make_independent(fleet, record)
            if steps.setting(fleet, record, "archive_mode") != "on":
                steps.restart(self.runner, fleet, record)
            progress["settings"] = True
            self.save(record.name, "", progress)
            return JobStatus(
                "running", f"{record.name} archives into its own repo now; creating its stanza."
            )
        # Without a checkpoint after the promotion the backup fails with [058] (pitfall 3).
        query(fleet, record, "checkpoint")
        self.backrest.setup_stanza(record)
        self._set_state(record, "backing-up")
        return JobStatus("running", f"{record.name} has its own stanza; taking its first backup.")

    # piece 7 -------------------------------------------------------------------------------

    def _first_backup(self, req: CloneRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        job_id = req.operation_id + BACKUP_SUFFIX
        self.backrest.backup_start(record, repo="repo1", backup_type="full", operation_id=job_id)
        status = self.backrest.backup_status(record, repo="repo1", operation_id=job_id)
        if status.state == "failed":
            raise PermanentError(f"The first backup failed. {status.message}",
                                 detail=status.detail)
        if status.state != "succeeded":
            return JobStatus("running", f"Taking {record.name}'s first full backup.")
        progress["result"] = steps.result(record, progress, status.result["label"])
        self.save(record.name, "", progress)
        self.fleet.save_record(dataclasses.replace(record, state="", initialized=True))
        return self.report(self.fleet.record(record.name) or record, progress)

    # -- reporting ----------------------------------------------------------------------------

    def succeeded(self, record: ClusterRecord, progress: dict[str, Any]) -> JobStatus:
        result = progress["result"]
        if result.get("scratch"):
            message = (
                f"{record.name} is a scratch primary on port {record.port}, restored from "
                f"{_source_name(record)}'s {_clone_repo(record)}, with archiving off."
            )
            return JobStatus("succeeded", message, dict(result))
        message = (
            f"{record.name} is a new primary on port {record.port}, restored from "
            f"{_source_name(record)}'s {_clone_repo(record)}, with its own first full backup "
            f"{result['first_backup']}."
        )
        if result.get("dropped_databases"):
            message += f" Dropped the databases not included: {result['dropped_databases']}."
        return JobStatus("succeeded", message, dict(result))

    def words(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return self.describe(record)[1]

    def describe(self, record: ClusterRecord) -> tuple[str, str]:
        """(state word, sentence) of a clone in progress or failed, for cluster status."""
        source = f"{_source_name(record)}'s {_clone_repo(record)}"
        if record.state == "failed":
            failure = self.load(record.name).get("failure", {})
            return "failed", f"The clone failed: {failure.get('message', 'see the operation')}"
        sentences = {
            "restoring": ("restoring", f"Restoring a backup from {source}."),
            "recovering": ("recovering", "Replaying WAL, then promoting."),
            "configuring": ("configuring", "Promoted; setting up its own stanza and archiving."),
            "backing-up": ("configuring", "Taking its first full backup."),
        }
        return sentences.get(record.state, (record.state, f"Cloning from {source}."))

    def hold(self, name: str) -> contextlib.AbstractContextManager[bool]:
        """Wait for any advance of this clone to finish and keep others out (for destroy)."""
        if not self.fleet.cluster_dir(name).is_dir():
            return contextlib.nullcontext(True)
        return cluster_lock(self.fleet, name, blocking=True)

    def load(self, name: str, operation_id: str = "") -> dict[str, Any]:
        """clone.json: one clone per target name, whatever the operation."""
        try:
            return json.loads((self.fleet.cluster_dir(name) / "clone.json").read_text())
        except (OSError, ValueError):
            return {}

    def save(self, name: str, operation_id: str, progress: dict[str, Any]) -> None:
        self.fleet.write_file(self.fleet.cluster_dir(name) / "clone.json", json.dumps(progress))

    def _set_state(self, record: ClusterRecord, state: str) -> ClusterRecord:
        record = dataclasses.replace(record, state=state)
        self.fleet.save_record(record)
        return record

    def _running(self, record: ClusterRecord) -> bool:
        pgdata = self.fleet.pgdata(record.name)
        if not (pgdata / "PG_VERSION").exists():
            return False
        argv = [str(self.runner.bindir / "pg_ctl"), "status", "-D", str(pgdata)]
        return self.runner.run(argv, what="pg_ctl status", check=False, timeout=30).returncode == 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _operation(record: ClusterRecord) -> str | None:
    return (record.clone_of or {}).get("operation_id")


def _source_name(record: ClusterRecord) -> str:
    return str((record.clone_of or {}).get("source", "?"))


def _clone_repo(record: ClusterRecord) -> str:
    return str((record.clone_of or {}).get("repo", "?"))
