"""Promotion of a local standby into an independent primary (PGBACKREST-LOCAL §4.7), as a
phase machine on disk (phases.py), in the order verified there:

  1. refuse while the source still runs as a primary (split brain), re-checked right
     before every pg_promote;
  2. `pg_promote(wait => true)`: PostgreSQL first replays whatever the repo still holds
     (it checks for promotion only after the archive has no next segment), so a source that
     was shut down cleanly by power_advance, which switches WAL first, loses nothing;
  3. make it independent, like a clone: its OWN pgbackrest.conf, stanza and repo, the
     recovery settings reset (pitfall 9), archive_mode=on into its own stanza (restart),
     CHECKPOINT (pitfall 3), stanza-create + check, and its first full backup.

Why its own stanza (design b) and not the old primary's (design a, what PGO does when the
promoted cluster's spec names the same repo): "one writer per stanza" (pitfall 2) then
holds by construction. With (a) it holds only while the old primary stays fenced: the
first time someone starts the old primary again (a shutdown/start operation, a reboot), two
primaries archive diverging timelines into one stanza, and every later restore or standby
with recovery_target_timeline=latest silently follows whichever timeline number is highest.
(a) would also need --pg1-path in archive_command (pitfall 1) and the source's config
rewritten to point at the new primary. The price of (b) is one full backup at promotion,
and the history before the promotion stays in the old primary's repo (still readable, never
written by the promoted cluster). The source's repo can thus never get a timeline from the
promoted standby. As an application the old primary is a second writable database, which is
why promotion is refused while it runs, and why starting it again afterwards is refused
while the promoted cluster runs (platform.power_advance).

    jobs/<cluster>/<op>-promote.progress   phase (promoting → configuring → backing-up →
                                           done | failed), timings, result
    jobs/<cluster>/<op>-first-backup.*     its first full backup
    cluster.json: standby_of.promoted_by = op once pg_promote was asked for; `busy` =
    {"kind": "promote", ...} until the promotion ends.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..base import ClusterRef, JobStatus, PermanentError, TransientError
from . import clone_steps as steps
from . import operations as ops
from .database import query
from .fleet import ClusterRecord
from .phases import FAILED, Handler, PhaseMachine

KIND = "promote"
BACKUP_JOB = "-first-backup"
# pg_promote(wait) waits this long; a promotion not seen after PROMOTE_RETRY_SECONDS (a
# restart between the request and the promotion loses the request) is asked for again.
PROMOTE_WAIT_SECONDS = 30
PROMOTE_RETRY_SECONDS = 120
WORDS = {
    "promoting": "Promoting.",
    "configuring": "Promoted; giving it its own stanza and repo.",
    "backing-up": "Promoted; taking its first full backup.",
}


def split_brain(source: str, standby: str) -> str:
    return (
        f"{source} is still running as a primary. Promoting {standby} now would leave two "
        f"primaries writing to diverging timelines (split brain). Shut {source} down first, "
        "or destroy it if it is gone for good."
    )


class Promoter(PhaseMachine):
    noun = "promotion"
    kind = KIND


    def promote(self, ref: ClusterRef, operation_id: str) -> JobStatus:
        ops.check_operation_id(operation_id)
        ops.check_ref(ref.namespace, self.namespace, ref.name)
        name = ref.name
        if self.fleet.record(name) is None:
            raise PermanentError(f"There is no local cluster {name!r} to promote.")
        return self.drive(operation_id, name, operation_id,
                          lambda record: self._begin(record, operation_id))

    def _begin(self, record: ClusterRecord, operation_id: str) -> dict[str, Any] | JobStatus:
        refusal = self._refuse_promotion(record)
        if refusal is not None:
            return refusal
        progress: dict[str, Any] = {"phase": "promoting", "requested_at": time.time()}
        self.save(record.name, operation_id, progress)
        return progress

    def phase_of(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return str(progress.get("phase", ""))

    def handlers(self) -> dict[str, Handler]:
        return {"promoting": self._promote, "configuring": self._independent,
                "backing-up": self._independent}

    def _independent(self, operation_id: str, record: ClusterRecord,
                     progress: dict[str, Any]) -> JobStatus:
        if not ops.running(self.runner, self.fleet, record):
            # Promoted, then stopped (a reboot, a DBA): start it again.
            steps.start_no_wait(self.runner, self.fleet, record)
            return JobStatus("running", f"{record.name} was not running: starting it again.")
        if progress["phase"] == "configuring":
            return self._configure(operation_id, record, progress)
        return self._first_backup(operation_id, record, progress)

    def _refuse_promotion(self, record: ClusterRecord) -> JobStatus | None:
        """Before anything is done: PermanentError when it is no standby (or not a finished
        one), a failed status when promoting now is unsafe or impossible."""
        name = record.name
        if not record.is_standby:
            raise PermanentError(f"{name} is not a standby: there is nothing to promote.")
        if record.state:
            raise PermanentError(
                f"{name} is still being made a standby ({record.state}): wait until it is "
                "ready, then promote it."
            )
        if not ops.running(self.runner, self.fleet, record):
            return JobStatus(
                "failed", f"{name} is not running: start it, let it catch up, then promote it."
            )
        return self._split_brain(record)

    def _split_brain(self, record: ClusterRecord) -> JobStatus | None:
        """A failed status while the standby's source runs as a primary (or cannot be told
        apart from one); None when it is stopped, a standby, or gone."""
        source_name = str((record.standby_of or {}).get("source"))
        source = self.fleet.record(source_name)
        if source is not None and (source.busy or {}).get("kind") == "restore-in-place":
            return JobStatus(
                "failed",
                f"{source_name} is being restored in place and comes back as a primary when "
                f"that ends: promoting {record.name} would leave two primaries (split brain). "
                f"Wait for the restore, shut {source_name} down, then promote.",
            )
        if source is None or not ops.running(self.runner, self.fleet, source):
            return None
        try:
            ((in_recovery,),) = query(self.fleet, source, "select pg_is_in_recovery()")
        except TransientError:
            in_recovery = False  # running, but not answering: assume it is a primary
        if in_recovery:
            return None
        return JobStatus("failed", split_brain(source_name, record.name))

    def _promote(self, operation_id: str, record: ClusterRecord, progress: dict) -> JobStatus:
        name = record.name
        if not record.busy or (record.standby_of or {}).get("promoted_by") != operation_id:
            standby_of = dict(record.standby_of or {}, promoted_by=operation_id)
            record = dataclasses.replace(
                record,
                standby_of=standby_of,
                busy={"kind": KIND, "operation_id": operation_id},
            )
            self.fleet.save_record(record)
        try:
            ((in_recovery,),) = query(self.fleet, record, "select pg_is_in_recovery()")
        except TransientError:
            return JobStatus("running", f"{name} is not accepting connections yet.")
        if in_recovery:
            asked = progress.get("promote_asked_at")
            if asked and time.time() - asked < PROMOTE_RETRY_SECONDS:
                return JobStatus(
                    "running", f"{name} is replaying the rest of the repo, then promoting."
                )
            refusal = self._split_brain(record)
            if refusal is not None:
                raise PermanentError(refusal.message)
            progress["promote_asked_at"] = time.time()
            self.save(name, operation_id, progress)
            statement = f"select pg_promote(wait => true, wait_seconds => {PROMOTE_WAIT_SECONDS})"
            ((done,),) = query(self.fleet, record, statement)
            if not done:
                return JobStatus(
                    "running", f"{name} is replaying the rest of the repo, then promoting."
                )
        progress["promoted_at"] = time.time()
        progress["phase"] = "configuring"
        self.save(name, operation_id, progress)
        return JobStatus("running", f"{name} is promoted; giving it its own stanza and repo.")

    def _configure(self, operation_id: str, record: ClusterRecord, progress: dict) -> JobStatus:
        """Its own pgbackrest.conf, stanza and repo (never the source's), then check."""
        fleet, name = self.fleet, record.name
        if not progress.get("settings"):
            for path in fleet.pgbackrest_dirs(name).values():
                fleet.make_dir(path)
            fleet.make_dir(fleet.repo_path(name).parent, 0o700)
            fleet.write_file(fleet.config_path(name), fleet.pgbackrest_conf(record))
            # No restore_command (the source's) nor other recovery leftovers, archive_mode on
            # into its own stanza, the new timeline's history file ready for the archiver.
            steps.make_independent(fleet, record)
            steps.restart(self.runner, fleet, record)
            progress["settings"] = True
            self.save(name, operation_id, progress)
            return JobStatus(
                "running", f"{name} archives into its own repo now; creating its stanza."
            )
        # Without a checkpoint after the promotion the backup fails with [058] (pitfall 3).
        query(fleet, record, "checkpoint")
        progress["timeline"] = ops.timeline(fleet, record)
        self.backrest.setup_stanza(record)  # stanza-create, then check: archiving works
        progress["phase"] = "backing-up"
        self.save(name, operation_id, progress)
        return JobStatus("running", f"{name} has its own stanza; taking its first full backup.")

    def _first_backup(self, operation_id: str, record: ClusterRecord,
                      progress: dict) -> JobStatus:
        job_id = operation_id + BACKUP_JOB
        self.backrest.backup_start(record, repo="repo1", backup_type="full", operation_id=job_id)
        status = self.backrest.backup_status(record, repo="repo1", operation_id=job_id)
        if status.state == "failed":
            raise PermanentError(f"The first backup failed. {status.message}", detail=status.detail)
        if status.state != "succeeded":
            return JobStatus("running", f"Taking {record.name}'s first full backup.")
        return self.finish(record, operation_id, progress, {
            "port": str(record.port),
            "timeline": str(progress["timeline"]),
            "promotion_seconds": f"{progress['promoted_at'] - progress['requested_at']:.1f}",
            "first_backup": status.result["label"],
        })

    def release(self, name: str, operation_id: str) -> None:
        """A finished promotion leaves an initialized primary of its own, no longer busy."""
        record = self.fleet.record(name)
        if record is not None:
            self.fleet.save_record(dataclasses.replace(record, busy=None, initialized=True))

    def succeeded(self, record: ClusterRecord, progress: dict[str, Any]) -> JobStatus:
        result = progress["result"]
        message = (
            f"{record.name} is a primary on timeline {result['timeline']}, archiving into its "
            f"own stanza and repo, with its first full backup {result['first_backup']}."
        )
        return JobStatus("succeeded", message, dict(result))

    def words(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return WORDS.get(str(progress.get("phase")), "Promoting.")

    def describe(self, busy: dict[str, Any], name: str) -> str:
        """What the promotion owning the cluster (its `busy`) is doing, for cluster status."""
        record = self.fleet.record(name)
        progress = self.load(name, str(busy.get("operation_id")))
        return self.report(record, progress).message if record else "Promoting."

    def mark_failed(self, record: ClusterRecord, operation_id: str,
                    progress: dict[str, Any]) -> None:
        """Release the cluster. Not promoted yet: it stays a standby (promoted_by removed),
        so another promotion can be asked for later."""
        name = record.name
        promoted = "promoted_at" in progress
        progress["phase"] = FAILED
        self.save(name, operation_id, progress)
        current = self.fleet.record(name) or record
        standby_of = dict(current.standby_of or {})
        if not promoted and standby_of.get("promoted_by") == operation_id:
            standby_of.pop("promoted_by")
        busy = current.busy if (current.busy or {}).get("operation_id") != operation_id else None
        self.fleet.save_record(dataclasses.replace(current, standby_of=standby_of, busy=busy))

