"""The local platform: PostgreSQL clusters and pgBackRest repos on this host, in one fleet
directory (layout in fleet.py), run as one unprivileged OS user (proc.py). Its parts: core.py
(settings and set-up), status.py, lifecycle.py, and here the repos, backups, clones and
operations, each carried out by a phase machine (phases.py)."""

from __future__ import annotations

import time

from ..base import (
    Applied,
    BackupType,
    ClonePlan,
    CloneRequest,
    ClusterRef,
    InPlaceRestoreRequest,
    JobStatus,
    PermanentError,
    RepoInventory,
    StandbyRequest,
    TransientError,
)
from .core import POLL_SECONDS, valid_name
from .database import load_demo_data, query
from .lifecycle import LifecycleMixin


class LocalPlatform(LifecycleMixin):
    """Clusters on this host (core.LocalCore says how it is set up)."""

    # -- SQL -----------------------------------------------------------------------------

    def sql(self, ref: ClusterRef, statement: str, *, database: str = "postgres") -> list[tuple]:
        """Run one statement (autocommit) as postgres over the unix socket; the rows it
        returned, [] for statements without a result. TransientError when the server cannot
        be reached, PermanentError when PostgreSQL rejects the statement."""
        return query(self._fleet, self._record(ref), statement, database=database)

    def load_demo_data(self, ref: ClusterRef) -> None:
        """Demo content: database <cluster name> with `users` (1000 rows) and pgbench -s 1
        tables, database `reporting` with one table, then a WAL switch. Safe to repeat."""
        load_demo_data(self._fleet, self._runner, self._record(ref))

    # -- repos and backups (pgBackRest) -------------------------------------------------

    def repos(self, ref: ClusterRef) -> list[RepoInventory]:
        record = self._record(ref)
        if not self._fleet.config_path(record.name).exists():
            return []  # a clone that has no stanza of its own yet
        return self._backrest.inventories(record)

    def backup_start(
        self, ref: ClusterRef, *, repo: str, backup_type: BackupType, operation_id: str
    ) -> Applied:
        """Launch the backup in the background and return at once. Idempotent per
        operation_id: a repeated call returns the first call's Applied. A standby has no
        repo of its own: PermanentError."""
        record = self._record(ref)
        if record.is_standby:
            raise PermanentError(
                f"{record.name} is a standby: it has no repo of its own. Back up its primary."
            )
        return self._backrest.backup_start(
            record, repo=repo, backup_type=backup_type, operation_id=operation_id
        )

    def backup_status(self, ref: ClusterRef, *, repo: str, operation_id: str) -> JobStatus:
        return self._backrest.backup_status(self._record(ref), repo=repo, operation_id=operation_id)

    # -- clones and point-in-time recovery into a new cluster (clone.py) ------------------

    def backup_databases(self, ref: ClusterRef, *, repo: str, label: str) -> list[str]:
        """The databases of one backup set (for --db-include), system databases excluded."""
        return self._backrest.set_databases(self._record(ref), repo=repo, label=label)

    def cluster_exists(self, ref: ClusterRef) -> bool:
        """A record, or data, repo or job files under this name (in this namespace)."""
        if ref.namespace != self.namespace or not valid_name(ref.name):
            return False
        return bool(self._fleet.in_the_way(ref.name))

    def clone_plan(self, req: CloneRequest) -> ClonePlan:
        """Steps in words and the exact restore command; changes nothing. PermanentError
        when the request is invalid or the target name is taken by something else."""
        return self._cloner.plan(_live_source(req))

    def clone_advance(self, req: CloneRequest) -> JobStatus:
        """The next missing piece of the clone (see clone.py); returns within seconds."""
        return self._cloner.advance(_live_source(req))

    # -- operations on an existing cluster (inplace.py, standby.py) -----------------------

    def restore_in_place_advance(self, req: InPlaceRestoreRequest) -> JobStatus:
        """Stop, `pgbackrest --delta restore` over itself, start, promote, clean up the
        recovery settings, CHECKPOINT and check archiving on the new timeline (inplace.py).
        PermanentError for a standby or a clone still being made."""
        return self._inplace.advance(req)

    def standby_advance(self, req: StandbyRequest) -> JobStatus:
        """A new hot standby replaying the source's repo (standby.py). Streaming (host and
        port) is refused: local clusters listen on a unix socket only."""
        return self._standbys.advance(req)

    def promote_advance(self, ref: ClusterRef, *, operation_id: str) -> JobStatus:
        """Promote a standby into an independent primary with its own stanza, repo and
        first full backup (standby.py explains why); failed while its source still runs as
        a primary (split brain)."""
        return self._promoter.promote(ref, operation_id)

    def backup_wait(
        self,
        ref: ClusterRef,
        *,
        repo: str,
        backup_type: BackupType,
        operation_id: str,
        timeout: float = 600,
    ) -> JobStatus:
        """backup_start, then poll backup_status until succeeded or failed. TransientError
        if it is still not finished after `timeout` seconds (the backup keeps running)."""
        self.backup_start(ref, repo=repo, backup_type=backup_type, operation_id=operation_id)
        deadline = time.monotonic() + timeout
        while True:
            status = self.backup_status(ref, repo=repo, operation_id=operation_id)
            if status.state in ("succeeded", "failed"):
                return status
            if time.monotonic() > deadline:
                raise TransientError(
                    f"The backup for {operation_id} is still {status.state} after {timeout:.0f} s."
                )
            time.sleep(POLL_SECONDS)


NO_CLOUD_SOURCE = (
    "The local platform clones its own clusters' repos; a cloud repo with no live cluster "
    "is restored on Kubernetes (PGO's spec.dataSource.pgbackrest)."
)


def _live_source(req: CloneRequest) -> CloneRequest:
    if req.source is None:
        raise PermanentError(NO_CLOUD_SOURCE)
    return req
