"""In-place restore of a local cluster (PITR over itself, or only some databases), as a
state machine on disk (PGBACKREST-LOCAL §4.5, §4.6).

`advance` does at most the next missing piece and returns; the pgBackRest restore runs
detached through jobs.py. Everything lives in files, so a new process continues:

    jobs/<cluster>/<op>-in-place.progress    phase, request, timings, failure, result
    jobs/<cluster>/<op>-in-place-restore.*   the detached `pgbackrest --delta restore`
    clusters/<cluster>/cluster.json          `busy` = {"kind": "restore-in-place",
                                             "operation_id": op} until it ends: shut down,
                                             start, another in-place restore and promotion
                                             are refused meanwhile
    clusters/<cluster>/.clone.lock           one step at a time (operations.cluster_lock)

The phases:
  stopping    a running primary switches WAL (its last commits reach the repo when the
              clean shutdown lets the archiver finish), then stops (fast). If WAL is left
              unarchived the restore stops here: the delta restore would erase it.
  restoring   `pgbackrest --delta restore` of the target over its own data directory,
              archiving kept on: the cluster stays the one writer of its stanza, and its
              new timeline is archived there (§4.5);
  starting    pg_ctl start without waiting; a FATAL during recovery (a target past the
              archived WAL) fails the restore in plain words;
  recovering  until it is promoted (--target-action=promote, or end of WAL for latest);
  cleaning    ALTER SYSTEM RESET of the recovery settings pgBackRest wrote (pitfall 9),
              drop the databases --db-include left as empty files (pitfall 11),
              CHECKPOINT (pitfall 3), `pgbackrest check` (archiving on the new timeline);
  done / failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import time
from typing import Any

from psycopg import sql as pgsql

from ..base import InPlaceRestoreRequest, JobStatus, PermanentError, TransientError
from ..restore_options import local_restore_argv
from . import clone_steps as steps
from . import operations as ops
from .backrest import REPOS
from .database import query
from .fleet import STANZA, ClusterRecord
from .phases import FAILED, Handler, PhaseMachine
from .proc import PGBACKREST

KIND = "in-place"
BUSY_KIND = "restore-in-place"
RESTORE_JOB = "-in-place-restore"
PHASES = ("stopping", "restoring", "starting", "recovering", "cleaning")
WORDS = {
    "stopping": "Stopping the cluster for the restore.",
    "restoring": "pgBackRest is restoring over the data directory (--delta).",
    "starting": "Starting PostgreSQL to replay WAL.",
    "recovering": "Replaying WAL up to the target, then promoting.",
    "cleaning": "Promoted; removing the recovery settings and checking archiving.",
}


class InPlaceRestorer(PhaseMachine):
    noun = "restore"
    kind = KIND

    # -- entry -----------------------------------------------------------------------------

    def advance(self, req: InPlaceRestoreRequest) -> JobStatus:
        ops.check_operation_id(req.operation_id)
        ops.check_ref(req.cluster.namespace, self.namespace, req.cluster.name)
        if req.repo not in REPOS:
            raise PermanentError(f"Local clusters have {', '.join(REPOS)}, not {req.repo!r}.")
        name = req.cluster.name
        if self.fleet.record(name) is None:
            raise PermanentError(f"There is no local cluster {name!r} to restore.")
        return self.drive(req, name, req.operation_id, lambda record: self._begin(req, record))

    def check_progress(self, req: InPlaceRestoreRequest, progress: dict[str, Any]) -> None:
        if progress["request"] != _request(req):
            raise PermanentError(
                f"Operation {req.operation_id} is restoring {req.cluster.name} with other "
                "parameters (repo, point, databases or process-max)."
            )

    def _begin(self, req: InPlaceRestoreRequest, record: ClusterRecord) -> dict[str, Any]:
        """Refuse what cannot be restored in place, claim the cluster: the first piece."""
        name = record.name
        if record.is_standby:
            raise PermanentError(
                f"{name} is a standby: it follows its primary's repo and has none of its own "
                "to restore from. Promote it first, or restore the primary."
            )
        if record.state == "failed":
            raise PermanentError(
                f"{name} is a clone or standby whose creation failed: destroy it and make it "
                "again; there is nothing to restore in place."
            )
        if record.state:
            raise PermanentError(
                f"{name} is still being made ({record.state}): it cannot be restored in place "
                "until that finishes."
            )
        if not record.initialized:
            raise PermanentError(f"{name} has not finished its creation: nothing to restore.")
        busy = record.busy or {}
        if busy and busy.get("operation_id") != req.operation_id and self._active(name, busy):
            raise PermanentError(
                f"{name} is busy with operation {busy.get('operation_id')} "
                f"({busy.get('kind')}): wait until it ends."
            )
        argv = self.restore_argv(req)  # validates the point (not in the future), databases
        self._check_databases(req, record)
        record = dataclasses.replace(
            record, busy={"kind": BUSY_KIND, "operation_id": req.operation_id}
        )
        self.fleet.save_record(record)
        progress: dict[str, Any] = {
            "request": _request(req),
            "phase": "stopping",
            "requested_at": time.time(),
            "command": shlex.join(argv),
        }
        self.save(name, req.operation_id, progress)
        return progress

    def _check_databases(self, req: InPlaceRestoreRequest, record: ClusterRecord) -> None:
        """Every --db-include name must be in the set the restore starts from, read from the
        repo now: pgBackRest checks only after the server is stopped ([080]), and a typo
        would leave the cluster down."""
        if not req.db_include:
            return
        label = req.db_set or self._newest_set(record, req.repo)
        known = self.backrest.set_databases(record, repo=req.repo, label=label)
        missing = [n for n in req.db_include if n not in known]
        if missing:
            raise PermanentError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in backup set "
                f"{label} of {record.name}'s {req.repo}, which holds: "
                f"{', '.join(known) or 'no user database'}. Nothing was stopped or restored."
            )

    def _newest_set(self, record: ClusterRecord, repo: str) -> str:
        inventory = next((r for r in self.backrest.inventories(record) if r.name == repo), None)
        if inventory is None or not inventory.backups:
            raise PermanentError(f"{record.name}'s {repo} has no backup to restore from.")
        return max(inventory.backups, key=lambda b: b.stopped_at).label

    def _active(self, name: str, busy: dict[str, Any]) -> bool:
        """Whether the operation holding `busy` is still under way. One that never wrote its
        progress died before doing anything, and one that ended left busy by accident."""
        kind = {BUSY_KIND: KIND, "promote": "promote"}.get(str(busy.get("kind")), "")
        progress = ops.load_progress(self.fleet, name, str(busy.get("operation_id")), kind)
        return bool(progress) and progress.get("phase") not in ("done", "failed")

    def restore_argv(self, req: InPlaceRestoreRequest) -> list[str]:
        """`pgbackrest --delta restore` over the cluster's own data directory, with its own
        config (pg1-path is its data directory) and stanza; archiving stays on."""
        options = local_restore_argv(
            req.point,
            now=dt.datetime.now(dt.UTC),
            repo=req.repo,
            db_include=req.db_include,
            process_max=req.process_max,
            delta=True,
        )
        config = self.fleet.config_path(req.cluster.name)
        return [PGBACKREST, f"--config={config}", f"--stanza={STANZA}", *options, "restore"]

    # -- the phases ------------------------------------------------------------------------

    def phase_of(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return str(progress.get("phase", ""))

    def handlers(self) -> dict[str, Handler]:
        return {"stopping": self._stop, "restoring": self._restore,
                "starting": self._recover, "recovering": self._recover,
                "cleaning": self._clean}

    def _stop(self, req: InPlaceRestoreRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        if ops.running(self.runner, self.fleet, record):
            ops.switch_wal(self.fleet, record)
            ops.stop_fast(self.runner, self.fleet, record)
        left = ops.unarchived_segments(self.fleet, record)
        if left:
            raise PermanentError(
                f"{record.name} is stopped, but {len(left)} WAL file(s) were not archived "
                f"({left[0]}{'…' if len(left) > 1 else ''}): the restore would erase them and "
                "the transactions in them. Nothing was restored. Fix archiving (pgbackrest "
                "check), start the cluster so it archives them, and restore again."
            )
        progress["stopped_at"] = time.time()
        progress["phase"] = "restoring"
        self.save(record.name, req.operation_id, progress)
        return self._restore(req, record, progress)

    def _restore(
        self, req: InPlaceRestoreRequest, record: ClusterRecord, progress: dict
    ) -> JobStatus:
        name = record.name
        view = self.backrest.jobs.view(name, req.operation_id + RESTORE_JOB)
        if (view is None or view.record is None or not view.record.pid) and ops.running(
                self.runner, self.fleet, record):
            # Started behind our back before the restore began: stop it again (pgBackRest
            # would refuse anyway, [038]).
            progress["phase"] = "stopping"
            self.save(name, req.operation_id, progress)
            return JobStatus("running", f"{name} was started meanwhile: stopping it again.")
        outcome = self.restore_job(
            name, req.operation_id + RESTORE_JOB, argv=lambda: shlex.split(progress["command"]),
            summary=f"Started pgBackRest: in-place restore of {name} from its {req.repo}.",
            running=f"pgBackRest is restoring {name} in place", fresh_data=False,
            failed_suffix=(f" {name} is stopped, and its data directory may be partly "
                           "restored: restore again before starting it."),
        )
        if isinstance(outcome, JobStatus):
            return outcome
        progress["restore"] = outcome.timings
        progress["phase"] = "starting"
        self.save(name, req.operation_id, progress)
        return self._recover(req, record, progress)

    def _recover(
        self, req: InPlaceRestoreRequest, record: ClusterRecord, progress: dict
    ) -> JobStatus:
        name = record.name
        status, why = self.watch_start(
            record, req.operation_id, progress,
            lambda fatal: steps.explain_fatal(fatal, source=name, repo=req.repo),
        )
        if why:
            tail = progress.get("start", {}).get("tail", "")
            raise PermanentError(f"{why} {name} is stopped.", detail=tail)
        if status is not None:
            return status
        try:
            ((in_recovery,),) = query(self.fleet, record, "select pg_is_in_recovery()")
        except TransientError:
            return JobStatus("running", f"{name} is starting and replaying WAL.")
        if progress["phase"] != "recovering":
            progress["phase"] = "recovering"
            self.save(name, req.operation_id, progress)
        if in_recovery:
            return JobStatus("running", f"{name} is replaying WAL.")
        progress.setdefault("promoted_at", time.time())  # not again after a restart
        progress["phase"] = "cleaning"
        self.save(name, req.operation_id, progress)
        return JobStatus("running", f"{name} is promoted; removing the recovery settings.")

    def _clean(
        self, req: InPlaceRestoreRequest, record: ClusterRecord, progress: dict
    ) -> JobStatus:
        fleet, name = self.fleet, record.name
        if not ops.running(self.runner, fleet, record):  # promoted, then stopped by someone
            progress.pop("start", None)
            progress["phase"] = "starting"
            self.save(name, req.operation_id, progress)
            return self._recover(req, record, progress)
        for setting in steps.RECOVERY_SETTINGS:
            statement = pgsql.SQL("alter system reset {}").format(pgsql.Identifier(setting))
            query(fleet, record, statement)
        query(fleet, record, "select pg_reload_conf()")
        if req.db_include and "dropped" not in progress:
            progress["dropped"] = steps.databases_to_drop(fleet, record, req.db_include)
            self.save(name, req.operation_id, progress)
        steps.drop_databases(fleet, record, progress.get("dropped", ()))
        # The promotion's end-of-recovery checkpoint is on the new timeline only once a
        # checkpoint ran: before it a backup fails with [058] (pitfall 3).
        query(fleet, record, "checkpoint")
        tli = ops.timeline(fleet, record)
        # check switches WAL and waits until the segment is in the repo: the new timeline
        # archives into the cluster's own stanza.
        self.runner.run(
            [*self.backrest.command(record), "check"], what="pgbackrest check", timeout=120
        )
        restore = progress["restore"]
        return self.finish(record, req.operation_id, progress, {
            "timeline": str(tli),
            "restore_seconds": f"{max(restore['ended_at'] - restore['started_at'], 0):.1f}",
            "recovery_seconds": f"{progress['promoted_at'] - progress['start']['at']:.1f}",
            # From the shutdown until it accepted writes again.
            "downtime_seconds": f"{progress['promoted_at'] - progress['stopped_at']:.1f}",
            "dropped_databases": ", ".join(progress.get("dropped", ())),
        })

    # -- reporting and files -----------------------------------------------------------------

    def succeeded(self, record: ClusterRecord, progress: dict[str, Any]) -> JobStatus:
        result = progress["result"]
        message = (
            f"{record.name} is restored in place and running as a primary on timeline "
            f"{result['timeline']}; archiving into its repo works."
        )
        if result["dropped_databases"]:
            message += f" Dropped the databases not included: {result['dropped_databases']}."
        return JobStatus("succeeded", message, dict(result), detail=progress.get("command", ""))

    def words(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return WORDS.get(str(progress.get("phase")), "Starting the restore.")

    def describe(self, busy: dict[str, Any], name: str) -> str:
        progress = self.load(name, str(busy.get("operation_id")))
        return WORDS.get(str(progress.get("phase")), "Being restored in place.")

    def mark_failed(self, record: ClusterRecord, operation_id: str,
                    progress: dict[str, Any]) -> None:
        progress["phase"] = FAILED
        self.save(record.name, operation_id, progress)
        self.release(record.name, operation_id)



def _request(req: InPlaceRestoreRequest) -> dict[str, Any]:
    """What identifies the restore; compared on every later call."""
    return {
        "repo": req.repo,
        "point": steps.point_to_json(req.point),
        "db_include": sorted(set(req.db_include)),
        "process_max": req.process_max,
    }
