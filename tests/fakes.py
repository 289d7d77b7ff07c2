"""An in-memory platform for service, reconcile and view tests: the one seam tests patch.

It keeps the contract of restores.platforms.base.Platform (idempotent backup_start keyed by
operation id) so the reconcile loop can be exercised without PostgreSQL or pgBackRest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from restores.platforms import base
from restores.platforms.pgbackrest import OPERATION_ANNOTATION

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def make_backup(label: str, *, type: str = "full", stop: dt.datetime = T0, repo: str = "repo1",
                op: str | None = None) -> base.Backup:
    return base.Backup(
        repo=repo, label=label, type=type,  # type: ignore[arg-type]
        started_at=stop - dt.timedelta(seconds=20), stopped_at=stop,
        database_size=30_000_000, delta_size=30_000_000, repo_size=4_000_000,
        repo_delta=4_000_000, wal_start="000000010000000000000002",
        wal_stop="000000010000000000000003", lsn_start="0/2000028", lsn_stop="0/3000050",
        annotations=((OPERATION_ANNOTATION, op),) if op else (),
    )


@dataclasses.dataclass
class FakeCluster:
    role: base.Role = "primary"
    backups: list[base.Backup] = dataclasses.field(default_factory=list)
    latest: dt.datetime = T0 + dt.timedelta(hours=1)
    fingerprint: str = ""  # ClusterStatus.fingerprint: "" = the sync always reads the repos


class FakePlatform(base.Platform):
    name = "local"
    drills = True
    checks_standby_source = True  # as the local platform it stands in for

    def __init__(self, namespace: str = "local") -> None:
        self.namespace = namespace
        self.clusters_: dict[str, FakeCluster] = {}
        self.started: list[str] = []  # operation ids backup_start really started
        self.started_for: dict[str, str] = {}  # operation id -> cluster name
        self.jobs: dict[str, base.JobStatus] = {}
        self.fail_next: list[base.PlatformError] = []
        self.repos_fail: list[base.PlatformError] = []  # raised by the next repos() calls

    # --- test controls
    def add(self, name: str, **kwargs: object) -> FakeCluster:
        self.clusters_[name] = FakeCluster(**kwargs)  # type: ignore[arg-type]
        return self.clusters_[name]

    def finish(self, operation_id: str, *, ok: bool = True, message: str = "") -> None:
        """Complete the backup started for operation_id, as pgBackRest would."""
        cluster = self.clusters_[self.started_for[operation_id]]
        if ok:
            label = f"20261124-{len(cluster.backups):06d}F"
            stop = cluster.latest + dt.timedelta(minutes=1)
            cluster.backups.append(make_backup(label, stop=stop, op=operation_id))
            cluster.latest = stop
            self.jobs[operation_id] = base.JobStatus("succeeded", result={"label": label})
        else:
            self.jobs[operation_id] = base.JobStatus("failed", message=message)

    def _raise(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _get(self, ref: base.ClusterRef) -> FakeCluster:
        if ref.name not in self.clusters_:
            raise base.PermanentError(f"no cluster {ref.name}")
        return self.clusters_[ref.name]

    # --- the interface
    def clusters(self) -> list[base.ClusterStatus]:
        return [self.cluster_status(base.ClusterRef(self.namespace, n)) for n in self.clusters_]

    def cluster_status(self, ref: base.ClusterRef) -> base.ClusterStatus:
        c = self._get(ref)
        return base.ClusterStatus(ref=ref, role=c.role, pg_version="15.20", state="ready",
                                  repos=("repo1",), connect_hint=f"psql {ref.name}",
                                  fingerprint=c.fingerprint)

    def repos(self, ref: base.ClusterRef) -> list[base.RepoInventory]:
        if self.repos_fail:
            raise self.repos_fail.pop(0)
        c = self._get(ref)
        earliest = min((b.stopped_at for b in c.backups), default=None)
        window = base.RecoverableWindow(earliest, c.latest if earliest else None,
                                        "000000010000000000000009", "000000010000000000000001")
        return [base.RepoInventory("repo1", "posix", 0, "ok", tuple(c.backups), window)]

    def backup_start(self, ref: base.ClusterRef, *, repo: str, backup_type: base.BackupType,
                     operation_id: str) -> base.Applied:
        self._raise()
        self._get(ref)
        if operation_id not in self.started:
            self.started.append(operation_id)
            self.started_for[operation_id] = ref.name
            self.jobs[operation_id] = base.JobStatus("running", message="backup running")
        return base.Applied(f"Started a {backup_type} backup of {ref.name} to {repo}.",
                            f"pgbackrest --stanza=db --repo=1 --type={backup_type} backup")

    def backup_status(self, ref: base.ClusterRef, *, repo: str,
                      operation_id: str) -> base.JobStatus:
        self._raise()
        return self.jobs.get(operation_id, base.JobStatus("pending"))

    # --- clones
    databases: dict[str, list[str]]
    clones: dict[str, base.JobStatus]
    clone_launches: list[str]

    def backup_databases(self, ref: base.ClusterRef, *, repo: str, label: str) -> list[str]:
        self._raise()
        return list(getattr(self, "databases", {}).get(label, ["hippo", "reporting"]))

    def cluster_exists(self, ref: base.ClusterRef) -> bool:
        return ref.name in self.clusters_

    def clone_plan(self, req: base.CloneRequest) -> base.ClonePlan:
        return base.ClonePlan(
            steps=(f"Restore {req.source.name}'s {req.repo} into {req.target.name}.",
                   "Replay WAL and promote.", f"Take {req.target.name}'s first full backup."),
            command=f"pgbackrest --stanza=db --repo=1 --pg1-path=/fleet/data/{req.target.name}"
                    " restore",
        )

    def clone_advance(self, req: base.CloneRequest) -> base.JobStatus:
        """First call starts the restore (once); `finish_clone` ends it."""
        self._raise()
        if not hasattr(self, "clones"):
            self.clones, self.clone_launches = {}, []
        if req.operation_id not in self.clones:
            self.clone_launches.append(req.operation_id)
            self.clones[req.operation_id] = base.JobStatus("running", message="restoring")
        return self.clones[req.operation_id]

    def finish_clone(self, req_id: str, target: str, *, ok: bool = True,
                     message: str = "", promoted_at: str = "") -> None:
        if ok:
            self.add(target, backups=[make_backup("20261124-120000F")])
            self.clones[req_id] = base.JobStatus(
                "succeeded", result={"restore_seconds": "3.1", "restored_bytes": "52000000",
                                     **({"promoted_at": promoted_at} if promoted_at else {})})
        else:
            self.clones[req_id] = base.JobStatus("failed", message=message)

    # --- operations on an existing cluster
    def restore_in_place_advance(self, req: base.InPlaceRestoreRequest) -> base.JobStatus:
        self._raise()
        self.in_place = getattr(self, "in_place", {})
        state = self.in_place.setdefault(req.operation_id, "running")
        return base.JobStatus(state, message=f"restore {state}")  # type: ignore[arg-type]

    def power_advance(self, ref: base.ClusterRef, *, operation_id: str, shutdown: bool,
                      acknowledge_split_brain: bool = False) -> base.JobStatus:
        self._raise()
        self.power_calls = [*getattr(self, "power_calls", []),
                            (ref.name, shutdown, acknowledge_split_brain)]
        self._get(ref).role = "shutdown" if shutdown else "primary"
        return base.JobStatus("succeeded", message=f"{ref.name} is {self._get(ref).role}")

    def standby_advance(self, req: base.StandbyRequest) -> base.JobStatus:
        self._raise()
        if req.target.name not in self.clusters_:
            self.add(req.target.name, role="standby")
            return base.JobStatus("running", message="bootstrapping the standby")
        return base.JobStatus("succeeded", message=f"{req.target.name} is a standby")

    def promote_advance(self, ref: base.ClusterRef, *, operation_id: str) -> base.JobStatus:
        self._raise()
        self._get(ref).role = "primary"
        return base.JobStatus("succeeded", message=f"{ref.name} is a primary")

    # --- drills
    verification: base.Verification | None = None  # what verify() answers; None: a good copy
    destroy_error: base.PlatformError | None = None
    destroyed: list[str]

    def verify(self, ref: base.ClusterRef, *, source: base.ClusterRef) -> base.Verification:
        self._raise()
        self._get(ref)
        self.verified = [*getattr(self, "verified", []), ref.name]
        return self.verification or base.Verification(
            server_version="15.20", system_identifier="7441234567890123456",
            source_system_identifier="7441234567890123456", in_recovery=False,
            databases=(base.DatabaseFacts("hippo", 30_000_000, 3),
                       base.DatabaseFacts("postgres", 7_500_000, 0)),
            last_replayed_commit=T0 + dt.timedelta(minutes=59), command="select 1",
        )

    # A drill's SQL checks: each statement's rows (values as text), or an error to raise; a
    # statement not in `answers` is rejected as PostgreSQL would a missing table.
    answers: dict[str, Any]
    amcheck_findings: str = ""

    def query(self, ref: base.ClusterRef, sql: str, *, database: str = "postgres",
              timeout_s: float = 30.0) -> base.QueryResult:
        self._raise()
        self._get(ref)
        self.queried = [*getattr(self, "queried", []), (ref.name, database, sql)]
        answer = getattr(self, "answers", {}).get(sql)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            raise base.PermanentError(f"{ref.name} rejected the statement: relation does not "
                                      "exist")
        return base.QueryResult(tuple(tuple(row) for row in answer), command=f"psql -c {sql}")

    def amcheck(self, ref: base.ClusterRef, *, database: str,
                relations: tuple[str, ...] = ()) -> base.AmcheckResult:
        self._raise()
        self._get(ref)
        return base.AmcheckResult(ok=not self.amcheck_findings, findings=self.amcheck_findings,
                                  command=f"pg_amcheck -d {database}")

    def cluster_destroy(self, ref: base.ClusterRef, *,
                        operation_id: str | None = None) -> base.Applied:
        self._raise()
        if self.destroy_error is not None:
            raise self.destroy_error
        self.destroyed = [*getattr(self, "destroyed", []), ref.name]
        if self.clusters_.pop(ref.name, None) is None:
            return base.Applied(f"{ref.name} is already deleted.")
        return base.Applied(f"Deleted {ref.name}.", command=f"rm -rf {ref.name}")
