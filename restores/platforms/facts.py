"""What the console and its platforms say to each other: plain data (frozen dataclasses,
strings, datetimes), never a Django model. Below the platform interface (`base.Platform`) and
the pure builders (`pgbackrest`, `manifests`, `restore_options`), which share it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from .targets import RestoreTarget

if TYPE_CHECKING:
    from .manifests import CloudSource

BackupType = Literal["full", "diff", "incr"]
BACKUP_TYPES: tuple[BackupType, ...] = ("full", "diff", "incr")

Role = Literal["primary", "standby", "shutdown", "unknown"]
JobState = Literal["pending", "running", "succeeded", "failed"]


FORMER_PRIMARY = (
    "{cluster} was the primary of {promoted}, which was promoted and accepts writes: starting "
    "{cluster} would make a second writable primary (split brain). Recreate {cluster} as a "
    "standby of {promoted}, or start it only with an explicit acknowledgement."
)


@dataclasses.dataclass(frozen=True)
class ClusterRef:
    """How a platform names one cluster."""

    namespace: str
    name: str


@dataclasses.dataclass(frozen=True)
class Condition:
    """One condition the platform reports on the cluster (PGO: status.conditions)."""

    type: str
    status: str  # True, False or Unknown
    reason: str = ""
    message: str = ""
    since: dt.datetime | None = None  # lastTransitionTime


@dataclasses.dataclass(frozen=True)
class ClusterWarning:
    """A recent warning about the cluster (Kubernetes: a Warning event on it)."""

    reason: str
    message: str
    at: dt.datetime | None = None  # when it was last seen
    count: int = 1


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    ref: ClusterRef
    role: Role
    pg_version: str
    # A short state word (ready, stopped, starting, restoring, failed) and a sentence for people.
    state: str
    message: str = ""
    # Repos configured on the cluster, e.g. ("repo1",).
    repos: tuple[str, ...] = ()
    # How a DBA reaches it by hand (a psql command line, or a kubectl command).
    connect_hint: str = ""
    # A digest of what the platform reports that may change what repos() answers (PGO: its
    # backup status and the leader pod to ask). While it stays the same, the inventory sync
    # does not ask again until its copy is DR_REPO_MAX_AGE old. Empty: the platform cannot
    # tell, and repos() is read on every sync.
    fingerprint: str = ""
    # What a DBA checks when the state word is not enough: every condition, and the newest
    # warnings first (at most WARNINGS_KEPT).
    conditions: tuple[Condition, ...] = ()
    warnings: tuple[ClusterWarning, ...] = ()
    # The cluster's labels as (key, value) pairs (PGO: the PostgresCluster's metadata.labels);
    # drill plans select clusters by them.
    labels: tuple[tuple[str, str], ...] = ()


WARNINGS_KEPT = 5


@dataclasses.dataclass(frozen=True)
class Backup:
    """One backup set in a repo, as `pgbackrest info --output=json` reports it."""

    repo: str  # "repo1"
    label: str  # "20261124-213840F_20261124-213940I"
    type: BackupType
    started_at: dt.datetime  # aware, UTC
    stopped_at: dt.datetime  # aware, UTC
    database_size: int  # info.size: bytes of the database at backup time
    delta_size: int  # info.delta: bytes of database files copied by this backup
    repo_size: int  # info.repository.size: repo bytes of the whole set
    repo_delta: int  # info.repository.delta: repo bytes written by this backup
    wal_start: str
    wal_stop: str
    lsn_start: str
    lsn_stop: str
    prior: str | None = None
    references: tuple[str, ...] = ()
    error: bool = False
    annotations: tuple[tuple[str, str], ...] = ()
    db_id: int = 1

    @property
    def duration(self) -> dt.timedelta:
        return self.stopped_at - self.started_at

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@dataclasses.dataclass(frozen=True)
class RecoverableWindow:
    """The span a restore from one repo can reach.

    `earliest` is the end of the oldest usable backup (a restore cannot stop before a backup
    is consistent). `latest` is when the newest archived WAL segment reached the repo: no
    target after it can be reached. Either is None when unknown (no backups, no WAL).
    """

    earliest: dt.datetime | None
    latest: dt.datetime | None
    latest_wal: str = ""
    oldest_wal: str = ""

    @property
    def is_empty(self) -> bool:
        return self.earliest is None


@dataclasses.dataclass(frozen=True)
class RepoInventory:
    name: str  # "repo1"
    kind: str  # posix, s3, gcs, azure
    status_code: int  # pgBackRest's repo status code, 0 = ok
    status_message: str
    backups: tuple[Backup, ...]
    window: RecoverableWindow
    backup_running: bool = False


@dataclasses.dataclass(frozen=True)
class Applied:
    """What a platform did, for the operation's history: the exact command or API request."""

    summary: str
    command: str = ""


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """The state of something a platform runs for an operation (a backup, a restore)."""

    state: JobState
    message: str = ""
    # What the platform produced, e.g. {"label": "20261124-213840F"}.
    result: dict[str, str] = dataclasses.field(default_factory=dict)
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class CloneRequest:
    """Create `target` from a backup in `source`'s repo: a clone (point kind "latest") or a
    point-in-time recovery into a new cluster. `operation_id` tags everything the platform
    creates, so a repeated call recognises its own work.

    A clone from a cloud repo with no live cluster (Kubernetes only, PGO's
    spec.dataSource.pgbackrest) has `source` None, `cloud` set (its repo name is `repo`)
    and needs `postgres_version`: there is no source cluster to read it from."""

    operation_id: str
    source: ClusterRef | None
    repo: str
    target: ClusterRef
    point: RestoreTarget
    db_include: tuple[str, ...] = ()
    process_max: int | None = None
    # Kubernetes only: the new cluster's volume size and the restore Job's scheduling.
    storage: str = ""
    resources: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: tuple[dict[str, Any], ...] = ()
    cloud: CloudSource | None = None
    postgres_version: int | None = None
    # A cloud clone's own backups: False, a volume repo; True, the source's cloud storage
    # (same credentials) at the clone's own path.
    backups_to_cloud: bool = False
    # A drill's scratch copy: restored and promoted, then left as it is: no stanza of its
    # own, archiving off, no first backup. It must never write to any repo, and it is
    # deleted once verified.
    scratch: bool = False

    def __post_init__(self) -> None:
        if (self.source is None) == (self.cloud is None):
            raise ValueError("a clone has exactly one source: a live cluster or a cloud repo")

    @property
    def origin(self) -> str:
        """Where the data comes from, in words: "hippo's repo1" or "s3://bucket/path"."""
        if self.cloud is not None:
            return self.cloud.describe()
        assert self.source is not None
        return f"{self.source.name}'s {self.repo}"


@dataclasses.dataclass(frozen=True)
class ClonePlan:
    """What a clone will do, for the review step: sentences, and exactly what is applied."""

    steps: tuple[str, ...]
    command: str = ""  # local: the exact pgBackRest command line
    manifest: dict[str, Any] | None = None  # kubernetes: the PostgresCluster body
    kubectl: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class InPlaceRestoreRequest:
    """Restore `cluster` over itself to `point` (PGO: restore.enabled + pgbackrest-restore
    annotation; local: stop, `--delta` restore, start). `db_include` restores only those
    databases."""

    operation_id: str
    cluster: ClusterRef
    repo: str
    point: RestoreTarget
    db_include: tuple[str, ...] = ()
    process_max: int | None = None
    # The backup set the restore starts from, as the console chose it: every name of
    # `db_include` must be one of its databases, checked before the cluster is stopped.
    db_set: str = ""


@dataclasses.dataclass(frozen=True)
class StandbyRequest:
    """Create `target` as a standby of `source`: replaying from `source`'s repo `repo`
    (PGO: spec.standby.repoName), or streaming from `host`:`port`."""

    operation_id: str
    source: ClusterRef
    target: ClusterRef
    repo: str | None = "repo1"
    host: str | None = None
    port: int | None = None
    storage: str = ""


@dataclasses.dataclass(frozen=True)
class DatabaseFacts:
    name: str
    size_bytes: int
    user_tables: int


@dataclasses.dataclass(frozen=True)
class Verification:
    """What a drill reads from its restored cluster (Platform.verify)."""

    server_version: str
    system_identifier: str
    source_system_identifier: str  # "" when the source's could not be read
    in_recovery: bool
    databases: tuple[DatabaseFacts, ...]
    # The last transaction replayed before the promotion (pg_last_xact_replay_timestamp),
    # None when recovery replayed none (a restore that stopped at the backup's end).
    last_replayed_commit: dt.datetime | None = None
    command: str = ""  # how it was read: the queries, or the kubectl exec line


@dataclasses.dataclass(frozen=True)
class QueryResult:
    """A read-only query's rows (each value as PostgreSQL's text, None for NULL) and how it
    was run (the psql or kubectl exec line a DBA can paste)."""

    rows: tuple[tuple[str | None, ...], ...]
    command: str = ""


@dataclasses.dataclass(frozen=True)
class AmcheckResult:
    """pg_amcheck's verdict on a database: ok when it found no corruption; its report."""

    ok: bool
    findings: str
    command: str = ""
