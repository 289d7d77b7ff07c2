"""Standbys fed from a source's repo, and their promotion, as state machines on disk
(PGBACKREST-LOCAL §4.7).

A standby is a new cluster restored with `--type=standby` from its source's repo into its
own data directory, on its own port. Its restore_command (written by pgBackRest) names the
SOURCE's config and stanza: it replays the source's archive, and it only ever reads that
repo (archive-get). It does not archive: `--archive-mode=off` puts archive_mode=off into its
postgresql.auto.conf, and it has no pgBackRest config or repo of its own while a standby.

    clusters/<standby>/cluster.json     created once (O_EXCL, Fleet.create_record):
                                        port, `standby_of` {source, repo, operation_id} and
                                        `state` restoring → starting → "" or failed
    jobs/<standby>/<op>-standby.progress  the source's newest archived WAL segment when the
                                        standby was requested, timings, failure, result
    jobs/<standby>/<op>-restore.*       the detached `pgbackrest --type=standby restore`

Creation is done when the standby accepts read-only connections and has replayed up to the
segment that was the newest in the source's repo when it was requested; its lag behind the
repo is in the message. Streaming standbys (host/port) are refused: local clusters listen
on a unix socket only.

Promotion (`promote`), in the order verified in §4.7:

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
promoted standby, and the old primary can be restarted safely (as an application it is a
second writable database, which is why promotion is refused while it runs).

    jobs/<cluster>/<op>-promote.progress   phase (promoting → configuring → backing-up →
                                           done | failed), timings, result
    jobs/<cluster>/<op>-first-backup.*     its first full backup
    cluster.json: standby_of.promoted_by = op once pg_promote was asked for; `busy` =
    {"kind": "promote", ...} until the promotion ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from typing import Any

from ..base import (
    ClusterRef,
    JobStatus,
    PermanentError,
    PlatformError,
    StandbyRequest,
    TransientError,
)
from ..pgbackrest import explain_error
from . import clone_steps as steps
from . import operations as ops
from .backrest import REPOS, Backrest
from .database import query
from .fleet import CONF_MARKER, STANZA, ClusterRecord, Fleet
from .proc import PGBACKREST, Runner

KIND = "standby"
PROMOTE_KIND = "promote"
RESTORE_JOB = "-restore"
BACKUP_JOB = "-first-backup"
STREAMING_UNSUPPORTED = "streaming standbys are not supported on the local platform"
# pg_promote(wait) waits this long; a promotion not seen after PROMOTE_RETRY_SECONDS (a
# restart between the request and the promotion loses the request) is asked for again.
PROMOTE_WAIT_SECONDS = 30
PROMOTE_RETRY_SECONDS = 120
PROMOTE_PHASES = ("promoting", "configuring", "backing-up")


def split_brain(source: str, standby: str) -> str:
    return (
        f"{source} is still running as a primary. Promoting {standby} now would leave two "
        f"primaries writing to diverging timelines (split brain). Shut {source} down first, "
        "or destroy it if it is gone for good."
    )


class Standbys:
    def __init__(
        self, fleet: Fleet, runner: Runner, backrest: Backrest, *, namespace: str, port_base: int
    ) -> None:
        self.fleet = fleet
        self.runner = runner
        self.backrest = backrest
        self.namespace = namespace
        self.port_base = port_base

    # == creation ==========================================================================

    def _check(self, req: StandbyRequest) -> None:
        ops.check_operation_id(req.operation_id)
        for ref in (req.source, req.target):
            ops.check_ref(ref.namespace, self.namespace, ref.name)
        if req.host is not None or req.port is not None:
            raise PermanentError(STREAMING_UNSUPPORTED)
        if req.repo not in REPOS:
            raise PermanentError(f"Local clusters have {', '.join(REPOS)}, not {req.repo!r}.")
        if req.source.name == req.target.name:
            raise PermanentError("A cluster cannot be a standby of itself.")

    def _source(self, req: StandbyRequest) -> tuple[ClusterRecord, str]:
        """The source's record and the newest WAL segment in its repo; PermanentError when
        a standby cannot be made from it."""
        source = self.fleet.record(req.source.name)
        if source is None:
            raise PermanentError(f"There is no local cluster {req.source.name!r}.")
        if source.is_standby:
            raise PermanentError(
                f"{source.name} is itself a standby; a standby needs a primary's repo."
            )
        if (
            not source.initialized
            or source.state
            or not self.fleet.config_path(source.name).exists()
        ):
            raise PermanentError(f"{source.name} is not finished yet: it has no repo to follow.")
        stanza = self.backrest.info(source)
        repo = stanza.repo(str(req.repo)) if stanza else None
        if repo is None or not repo.backups:
            raise PermanentError(
                f"{source.name}'s {req.repo} has no backup: a standby starts from one. Take a "
                "full backup first."
            )
        return source, repo.archive_max

    def advance(self, req: StandbyRequest) -> JobStatus:
        self._check(req)
        record = self.fleet.record(req.target.name)
        if record is None:
            source, segment = self._source(req)
            record, created = self._create(req, source)
            if record is None:
                return JobStatus("failed", steps.taken(req.target.name))
            if created:  # a concurrent call that found it made must not overwrite progress
                progress = {"requested_at": time.time(), "repo_segment": segment}
                self._save(record.name, req.operation_id, progress)
            # On to the restore in this same call, under the lock like any later call.
        if (record.standby_of or {}).get("operation_id") != req.operation_id:
            return JobStatus("failed", steps.taken(req.target.name))
        if _identity(record.standby_of) != _identity(_standby_of(req)):
            raise PermanentError(
                f"{record.name} is being made a standby by operation {req.operation_id} with "
                "other parameters (source or repo)."
            )
        with ops.cluster_lock(self.fleet, record.name, blocking=False) as held:
            record = self.fleet.record(record.name) or record
            progress = self._load(record.name, req.operation_id)
            if not held:
                return self._report(record, progress, busy=True)
            if record.state not in ("restoring", "starting"):
                return self._report(record, progress)
            try:
                if record.state == "restoring":
                    return self._restore(req, record, progress)
                return self._start(req, record, progress)
            except PermanentError as exc:
                return self._fail(record, progress, exc.message, exc.detail)

    def _create(
        self, req: StandbyRequest, source: ClusterRecord
    ) -> tuple[ClusterRecord | None, bool]:
        """(the standby's record, whether this call created it): the port is allocated
        under the fleet lock. (None, False) when something else already has the name."""
        fleet = self.fleet
        with fleet.lock():
            existing = fleet.record(req.target.name)
            if existing is not None:
                mine = (existing.standby_of or {}).get("operation_id") == req.operation_id
                return (existing if mine else None), False
            if fleet.in_the_way(req.target.name):
                return None, False
            record = dataclasses.replace(
                fleet.new_record(
                    req.target.name, port_base=self.port_base, pg_version=source.pg_version
                ),
                state="restoring",
                standby_of=_standby_of(req),
            )
            fleet.make_dir(fleet.cluster_dir(record.name))
            if not fleet.create_record(record):
                return None, False
            return record, True

    def restore_argv(self, req: StandbyRequest, record: ClusterRecord) -> list[str]:
        """`pgbackrest --type=standby restore` with the SOURCE's config and stanza into the
        standby's data directory: the restore_command it writes names the source's config
        (reading its repo), archiving off, the standby's own port (pitfall 10)."""
        return [
            PGBACKREST,
            f"--config={self.fleet.config_path(req.source.name)}",
            f"--stanza={STANZA}",
            f"--repo={str(req.repo).removeprefix('repo')}",
            f"--pg1-path={self.fleet.pgdata(record.name)}",
            "--type=standby",
            "--archive-mode=off",
            f"--recovery-option=port={record.port}",
            "restore",
        ]

    def _restore(self, req: StandbyRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        jobs, name = self.backrest.jobs, record.name
        job_id = req.operation_id + RESTORE_JOB
        pgdata = self.fleet.pgdata(name)
        view = jobs.view(name, job_id)
        if view is None or view.record is None or not view.record.pid:
            if view is not None and pgdata.exists() and any(pgdata.iterdir()):
                raise PermanentError(
                    f"{pgdata} is not empty, but the restore that wrote it was not recorded: "
                    f"an earlier attempt was interrupted. Destroy {name} and try again."
                )
            if not self.fleet.config_path(req.source.name).exists():
                raise PermanentError(f"{req.source.name} is gone: there is no repo to restore.")
            self.fleet.make_dir(pgdata, 0o700)
            pgdata.chmod(0o700)
            argv = self.restore_argv(req, record)
            summary = (
                f"Started pgBackRest: standby restore of {req.source.name}'s {req.repo} into "
                f"{name}."
            )
            return JobStatus("running", jobs.start(name, job_id, argv, summary).summary)
        if view.rc is None and view.alive:
            return JobStatus(
                "running",
                f"pgBackRest is restoring {req.source.name}'s {req.repo} into {name} "
                f"(pid {view.record.pid}).",
            )
        if view.rc is None:
            raise PermanentError(
                "The restore process ended without reporting a result.", detail=view.log[-4000:]
            )
        if view.rc != 0:
            why = explain_error(view.log) or f"pgBackRest exited with code {view.rc}."
            raise PermanentError(f"The restore failed. {why}", detail=view.log[-4000:])
        rc_path = self.fleet.jobs_dir(name) / f"{job_id}.rc"
        progress["restore"] = {
            "started_at": view.record.created_at,
            "ended_at": rc_path.stat().st_mtime,
        }
        self._own_conf_block(record)
        self._save(name, req.operation_id, progress)
        record = dataclasses.replace(record, state="starting")
        self.fleet.save_record(record)
        return self._start(req, record, progress)

    def _own_conf_block(self, record: ClusterRecord) -> None:
        """The restored postgresql.conf still carries the source's managed block (its port,
        its archive_command): replace it by the standby's own. archive_mode=off in
        postgresql.auto.conf wins while it is a standby."""
        conf = self.fleet.pgdata(record.name) / "postgresql.conf"
        head = conf.read_text().split(f"\n{CONF_MARKER}\n", 1)[0]
        self.fleet.write_file(conf, head + self.fleet.postgresql_conf(record, PGBACKREST), 0o600)

    def _start(self, req: StandbyRequest, record: ClusterRecord, progress: dict) -> JobStatus:
        name = record.name
        status, why = ops.watch_start(
            self.runner,
            self.fleet,
            record,
            progress,
            lambda: self._save(name, req.operation_id, progress),
            lambda fatal: f"PostgreSQL stopped while starting as a standby: {fatal}",
        )
        if why:
            raise PermanentError(why, detail=progress.get("start", {}).get("tail", ""))
        if status is not None:
            return status
        try:
            position = self.replay_position(record)
        except TransientError:
            return JobStatus("running", f"{name} is starting; not yet accepting connections.")
        if position is None:
            raise PermanentError(
                f"{name} came up as a primary, not as a standby: destroy it and try again."
            )
        lag = self.lag_message(record, position, req.source.name, str(req.repo))
        wanted = progress.get("repo_segment") or ""
        lsn, size = position
        if wanted and ops.lsn_value(lsn) // size < ops.segment_number(wanted, size):
            return JobStatus("running", f"{name} is catching up: {lag}")
        progress["caught_up_at"] = time.time()
        restore = progress["restore"]
        progress["result"] = {
            "port": str(record.port),
            "restore_seconds": f"{max(restore['ended_at'] - restore['started_at'], 0):.1f}",
            "catch_up_seconds": f"{progress['caught_up_at'] - progress['start']['at']:.1f}",
            "replayed_lsn": lsn,
            "repo_segment": wanted,
        }
        progress["lag"] = lag
        self._save(name, req.operation_id, progress)
        self.fleet.save_record(dataclasses.replace(record, state=""))
        return self._report(self.fleet.record(name) or record, progress)

    def replay_position(self, record: ClusterRecord) -> tuple[str, int] | None:
        """(replayed LSN, WAL segment size) of a standby accepting read-only connections;
        None when the server is not in recovery. TransientError while it is not reachable."""
        ((in_recovery, lsn, size),) = query(
            self.fleet,
            record,
            "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
            "pg_size_bytes(current_setting('wal_segment_size'))",
        )
        if not in_recovery:
            return None
        return str(lsn or "0/0"), int(size)

    def lag_message(
        self, record: ClusterRecord, position: tuple[str, int], source: str, repo: str
    ) -> str:
        """Where replay stands against the newest segment in the source's repo."""
        lsn, size = position
        text = f"replayed up to {lsn}"
        source_record = self.fleet.record(source)
        if source_record is None or not self.fleet.config_path(source).exists():
            return f"{text}; {source} is gone, its repo cannot be read."
        with contextlib.suppress(PlatformError):
            stanza = self.backrest.info(source_record)
            found = stanza.repo(repo) if stanza else None
            if found is not None and found.archive_max:
                behind = ops.segment_number(found.archive_max, size) - ops.lsn_value(lsn) // size
                where = "up to date with" if behind <= 0 else f"{behind} segment(s) behind"
                return (
                    f"{text}, {where} {source}'s {repo} (newest archived WAL {found.archive_max})."
                )
        return f"{text}; {source}'s {repo} could not be read."

    # -- reporting (creation) ------------------------------------------------------------------

    def _report(self, record: ClusterRecord, progress: dict, busy: bool = False) -> JobStatus:
        if record.state == "failed":
            failure = progress.get("failure", {})
            return JobStatus("failed", failure.get("message", ""), detail=failure.get("detail", ""))
        if record.state == "" and "result" in progress:
            source = (record.standby_of or {}).get("source", "?")
            message = (
                f"{record.name} is a hot standby of {source} on port {record.port}, replaying "
                f"{source}'s {(record.standby_of or {}).get('repo')}: {progress.get('lag', '')}"
            )
            return JobStatus("succeeded", message, dict(progress["result"]))
        prefix = "Another call is advancing this standby. " if busy else ""
        return JobStatus("running", prefix + self.describe(record)[1])

    def describe(self, record: ClusterRecord) -> tuple[str, str]:
        """(state word, sentence) of a standby being made or failed, for cluster status."""
        source = (record.standby_of or {}).get("source", "?")
        if record.state == "failed":
            op = str((record.standby_of or {}).get("operation_id"))
            failure = self._load(record.name, op).get("failure", {})
            return "failed", f"The standby failed: {failure.get('message', 'see the operation')}"
        if record.state == "restoring":
            return "restoring", f"Restoring a backup of {source} as a standby."
        return "starting", f"Starting as a standby of {source} and catching up with its repo."

    def _fail(
        self, record: ClusterRecord, progress: dict, message: str, detail: str = ""
    ) -> JobStatus:
        progress["failure"] = {"message": message, "detail": detail, "at": time.time()}
        op = str((record.standby_of or {}).get("operation_id"))
        self._save(record.name, op, progress)
        self.fleet.save_record(dataclasses.replace(record, state="failed"))
        return JobStatus("failed", message, detail=detail)

    # == promotion =========================================================================

    def promote(self, ref: ClusterRef, operation_id: str) -> JobStatus:
        ops.check_operation_id(operation_id)
        ops.check_ref(ref.namespace, self.namespace, ref.name)
        name = ref.name
        if self.fleet.record(name) is None:
            raise PermanentError(f"There is no local cluster {name!r} to promote.")
        with ops.cluster_lock(self.fleet, name, blocking=False) as held:
            progress = ops.load_progress(self.fleet, name, operation_id, PROMOTE_KIND)
            if not held:
                return self._promote_report(name, progress, busy=True)
            record = self.fleet.record(name)
            if record is None:
                raise PermanentError(f"The local cluster {name!r} was destroyed.")
            if not progress:
                refusal = self._refuse_promotion(record)
                if refusal is not None:
                    return refusal
                progress = {"phase": "promoting", "requested_at": time.time()}
                self._save_promote(name, operation_id, progress)
            if progress["phase"] not in PROMOTE_PHASES:
                return self._promote_report(name, progress)
            try:
                if progress["phase"] == "promoting":
                    return self._promote(record, operation_id, progress)
                if not ops.running(self.runner, self.fleet, record):
                    # Promoted, then stopped (a reboot, a DBA): start it again.
                    steps.start_no_wait(self.runner, self.fleet, record)
                    return JobStatus("running", f"{name} was not running: starting it again.")
                if progress["phase"] == "configuring":
                    return self._configure(record, operation_id, progress)
                return self._first_backup(record, operation_id, progress)
            except PermanentError as exc:
                return self._promote_fail(record, operation_id, progress, exc.message, exc.detail)

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

    def _promote(self, record: ClusterRecord, operation_id: str, progress: dict) -> JobStatus:
        name = record.name
        if not record.busy or (record.standby_of or {}).get("promoted_by") != operation_id:
            standby_of = dict(record.standby_of or {}, promoted_by=operation_id)
            record = dataclasses.replace(
                record,
                standby_of=standby_of,
                busy={"kind": PROMOTE_KIND, "operation_id": operation_id},
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
                return self._promote_fail(record, operation_id, progress, refusal.message)
            progress["promote_asked_at"] = time.time()
            self._save_promote(name, operation_id, progress)
            statement = f"select pg_promote(wait => true, wait_seconds => {PROMOTE_WAIT_SECONDS})"
            ((done,),) = query(self.fleet, record, statement)
            if not done:
                return JobStatus(
                    "running", f"{name} is replaying the rest of the repo, then promoting."
                )
        progress["promoted_at"] = time.time()
        progress["phase"] = "configuring"
        self._save_promote(name, operation_id, progress)
        return JobStatus("running", f"{name} is promoted; giving it its own stanza and repo.")

    def _configure(self, record: ClusterRecord, operation_id: str, progress: dict) -> JobStatus:
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
            self._save_promote(name, operation_id, progress)
            return JobStatus(
                "running", f"{name} archives into its own repo now; creating its stanza."
            )
        # Without a checkpoint after the promotion the backup fails with [058] (pitfall 3).
        query(fleet, record, "checkpoint")
        progress["timeline"] = ops.timeline(fleet, record)
        self.backrest.setup_stanza(record)  # stanza-create, then check: archiving works
        progress["phase"] = "backing-up"
        self._save_promote(name, operation_id, progress)
        return JobStatus("running", f"{name} has its own stanza; taking its first full backup.")

    def _first_backup(self, record: ClusterRecord, operation_id: str, progress: dict) -> JobStatus:
        job_id = operation_id + BACKUP_JOB
        self.backrest.backup_start(record, repo="repo1", backup_type="full", operation_id=job_id)
        status = self.backrest.backup_status(record, repo="repo1", operation_id=job_id)
        if status.state == "failed":
            raise PermanentError(f"The first backup failed. {status.message}", detail=status.detail)
        if status.state != "succeeded":
            return JobStatus("running", f"Taking {record.name}'s first full backup.")
        progress["result"] = {
            "port": str(record.port),
            "timeline": str(progress["timeline"]),
            "promotion_seconds": f"{progress['promoted_at'] - progress['requested_at']:.1f}",
            "first_backup": status.result["label"],
        }
        progress["phase"] = "done"
        progress["ended_at"] = time.time()
        self._save_promote(record.name, operation_id, progress)
        record = self.fleet.record(record.name) or record
        self.fleet.save_record(dataclasses.replace(record, busy=None, initialized=True))
        return self._promote_report(record.name, progress)

    def _promote_report(self, name: str, progress: dict, busy: bool = False) -> JobStatus:
        phase = progress.get("phase")
        if phase == "failed":
            failure = progress.get("failure", {})
            return JobStatus("failed", failure.get("message", ""), detail=failure.get("detail", ""))
        if phase == "done":
            result = progress["result"]
            message = (
                f"{name} is a primary on timeline {result['timeline']}, archiving into its own "
                f"stanza and repo, with its first full backup {result['first_backup']}."
            )
            return JobStatus("succeeded", message, dict(result))
        words = {
            "promoting": "Promoting.",
            "configuring": "Promoted; giving it its own stanza and repo.",
            "backing-up": "Promoted; taking its first full backup.",
        }
        prefix = "Another call is advancing this promotion. " if busy else ""
        return JobStatus("running", prefix + words.get(str(phase), "Promoting."))

    def describe_promotion(self, busy: dict[str, Any], name: str) -> str:
        op = str(busy.get("operation_id"))
        progress = ops.load_progress(self.fleet, name, op, PROMOTE_KIND)
        return self._promote_report(name, progress).message

    def _promote_fail(
        self,
        record: ClusterRecord,
        operation_id: str,
        progress: dict,
        message: str,
        detail: str = "",
    ) -> JobStatus:
        """Record the failure and release the cluster. Not promoted yet: it stays a standby
        (promoted_by removed), so another promotion can be asked for later."""
        name = record.name
        progress["failure"] = {"message": message, "detail": detail, "at": time.time()}
        progress["failed_in"] = progress.get("phase")
        promoted = "promoted_at" in progress
        progress["phase"] = "failed"
        self._save_promote(name, operation_id, progress)
        current = self.fleet.record(name) or record
        standby_of = dict(current.standby_of or {})
        if not promoted and standby_of.get("promoted_by") == operation_id:
            standby_of.pop("promoted_by")
        busy = current.busy if (current.busy or {}).get("operation_id") != operation_id else None
        self.fleet.save_record(dataclasses.replace(current, standby_of=standby_of, busy=busy))
        return JobStatus("failed", message, detail=detail)

    # -- files ------------------------------------------------------------------------------------

    def _load(self, name: str, operation_id: str) -> dict[str, Any]:
        return ops.load_progress(self.fleet, name, operation_id, KIND)

    def _save(self, name: str, operation_id: str, progress: dict[str, Any]) -> None:
        ops.save_progress(self.fleet, name, operation_id, KIND, progress)

    def _save_promote(self, name: str, operation_id: str, progress: dict[str, Any]) -> None:
        ops.save_progress(self.fleet, name, operation_id, PROMOTE_KIND, progress)


def _standby_of(req: StandbyRequest) -> dict[str, Any]:
    return {
        "source": req.source.name,
        "repo": req.repo,
        "operation_id": req.operation_id,
        "requested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _identity(standby_of: dict[str, Any] | None) -> tuple[Any, ...]:
    data = standby_of or {}
    return data.get("source"), data.get("repo"), data.get("operation_id")
