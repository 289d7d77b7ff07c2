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

Promotion is promotion.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from typing import Any

from ..base import JobStatus, PermanentError, PlatformError, StandbyRequest, TransientError
from . import clone_steps as steps
from . import operations as ops
from .backrest import REPOS
from .database import query
from .fleet import CONF_MARKER, STANZA, ClusterRecord
from .phases import Handler, NewClusterMachine
from .proc import PGBACKREST

KIND = "standby"
RESTORE_JOB = "-restore"
STREAMING_UNSUPPORTED = "streaming standbys are not supported on the local platform"


class Standbys(NewClusterMachine):
    noun = "standby"
    kind = KIND

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
            record, created = self.create_record(
                req.target.name, req.operation_id, source, standby_of=_standby_of(req),
                made_by=lambda r: (r.standby_of or {}).get("operation_id"))
            if record is None:
                return JobStatus("failed", steps.taken(req.target.name))
            if created:  # a concurrent call that found it made must not overwrite progress
                progress = {"requested_at": time.time(), "repo_segment": segment}
                self.save(record.name, req.operation_id, progress)
            # On to the restore in this same call, under the lock like any later call.
        if (record.standby_of or {}).get("operation_id") != req.operation_id:
            return JobStatus("failed", steps.taken(req.target.name))
        if _identity(record.standby_of) != _identity(_standby_of(req)):
            raise PermanentError(
                f"{record.name} is being made a standby by operation {req.operation_id} with "
                "other parameters (source or repo)."
            )
        return self.drive(req, record.name, req.operation_id)

    def handlers(self) -> dict[str, Handler]:
        return {"restoring": self._restore, "starting": self._start}

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
        name = record.name
        if not self.fleet.config_path(req.source.name).exists():
            raise PermanentError(f"{req.source.name} is gone: there is no repo to restore.")
        outcome = self.restore_job(
            name, req.operation_id + RESTORE_JOB, argv=lambda: self.restore_argv(req, record),
            summary=(f"Started pgBackRest: standby restore of {req.source.name}'s {req.repo} "
                     f"into {name}."),
            running=f"pgBackRest is restoring {req.source.name}'s {req.repo} into {name}",
        )
        if isinstance(outcome, JobStatus):
            return outcome
        progress["restore"] = outcome.timings
        self._own_conf_block(record)
        self.save(name, req.operation_id, progress)
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
        status, why = self.watch_start(
            record, req.operation_id, progress,
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
        self.save(name, req.operation_id, progress)
        self.fleet.save_record(dataclasses.replace(record, state=""))
        return self.report(self.fleet.record(name) or record, progress)

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

    def succeeded(self, record: ClusterRecord, progress: dict[str, Any]) -> JobStatus:
        source = (record.standby_of or {}).get("source", "?")
        message = (
            f"{record.name} is a hot standby of {source} on port {record.port}, replaying "
            f"{source}'s {(record.standby_of or {}).get('repo')}: {progress.get('lag', '')}"
        )
        return JobStatus("succeeded", message, dict(progress["result"]))

    def words(self, record: ClusterRecord, progress: dict[str, Any]) -> str:
        return self.describe(record)[1]

    def describe(self, record: ClusterRecord) -> tuple[str, str]:
        """(state word, sentence) of a standby being made or failed, for cluster status."""
        source = (record.standby_of or {}).get("source", "?")
        if record.state == "failed":
            op = str((record.standby_of or {}).get("operation_id"))
            failure = self.load(record.name, op).get("failure", {})
            return "failed", f"The standby failed: {failure.get('message', 'see the operation')}"
        if record.state == "restoring":
            return "restoring", f"Restoring a backup of {source} as a standby."
        return "starting", f"Starting as a standby of {source} and catching up with its repo."


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
