"""The platform interface: what the console needs from a place that runs PostgreSQL.

Every argument and result is plain data from `facts` (re-exported here), never a Django model,
so a platform can be tested without a database and a new one slots in without touching views
or services. Every method may raise `PlatformError`; its `permanent` flag tells the caller
whether retrying can help.
"""

from __future__ import annotations

import abc
import datetime as dt

# The errors and the data are part of the interface: re-exported for `from .base import ...`.
from .errors import PermanentError as PermanentError
from .errors import PlatformError as PlatformError
from .errors import TransientError as TransientError
from .facts import BACKUP_TYPES as BACKUP_TYPES
from .facts import FORMER_PRIMARY as FORMER_PRIMARY
from .facts import WARNINGS_KEPT as WARNINGS_KEPT
from .facts import AmcheckResult as AmcheckResult
from .facts import Applied as Applied
from .facts import Backup as Backup
from .facts import BackupType as BackupType
from .facts import ClonePlan as ClonePlan
from .facts import CloneRequest as CloneRequest
from .facts import ClusterRef as ClusterRef
from .facts import ClusterStatus as ClusterStatus
from .facts import ClusterWarning as ClusterWarning
from .facts import Condition as Condition
from .facts import DatabaseFacts as DatabaseFacts
from .facts import InPlaceRestoreRequest as InPlaceRestoreRequest
from .facts import JobState as JobState
from .facts import JobStatus as JobStatus
from .facts import QueryResult as QueryResult
from .facts import RecoverableWindow as RecoverableWindow
from .facts import RepoInventory as RepoInventory
from .facts import Role as Role
from .facts import StandbyRequest as StandbyRequest
from .facts import Verification as Verification
from .targets import RestoreTarget as RestoreTarget


class Platform(abc.ABC):
    """One place clusters run. Implementations: local (this host) and kubernetes (PGO)."""

    name: str
    # The most parallel processes a restore may use here (pgBackRest --process-max).
    process_max_limit: int = 16
    # How soon an operation looks again at what this platform runs for it (a restore, a
    # backup, a server starting): each end and promotion waits up to this long to be seen.
    poll_interval: dt.timedelta = dt.timedelta(seconds=1)

    @abc.abstractmethod
    def clusters(self) -> list[ClusterStatus]:
        """Every cluster this platform can see, with its live status."""

    @abc.abstractmethod
    def cluster_status(self, ref: ClusterRef) -> ClusterStatus:
        """One cluster's live status; PermanentError if it does not exist."""

    @abc.abstractmethod
    def repos(self, ref: ClusterRef) -> list[RepoInventory]:
        """Each repo of the cluster with its backups and recoverable window."""

    @abc.abstractmethod
    def backup_start(
        self, ref: ClusterRef, *, repo: str, backup_type: BackupType, operation_id: str
    ) -> Applied:
        """Start a backup tagged with operation_id. Idempotent: a second call with the same
        operation_id never starts a second backup."""

    @abc.abstractmethod
    def backup_status(self, ref: ClusterRef, *, repo: str, operation_id: str) -> JobStatus:
        """The state of the backup started for operation_id."""

    # --- restores into a new cluster (clone / PITR) ---------------------------------------

    @abc.abstractmethod
    def backup_databases(self, ref: ClusterRef, *, repo: str, label: str) -> list[str]:
        """The databases a backup set holds (for --db-include), system databases excluded."""

    @abc.abstractmethod
    def cluster_exists(self, ref: ClusterRef) -> bool:
        """Whether a cluster (or anything in the way of creating one) already has this name."""

    @abc.abstractmethod
    def clone_plan(self, req: CloneRequest) -> ClonePlan:
        """Describe the clone without changing anything."""

    @abc.abstractmethod
    def clone_advance(self, req: CloneRequest) -> JobStatus:
        """Do the next missing piece of the clone and report where it stands.

        Idempotent: call it until it returns succeeded or failed; calling it again after a
        crash, or twice at once for the same operation_id, never restores twice. A succeeded
        status carries timings and sizes in `result`."""

    # --- operations on an existing cluster --------------------------------------------------
    # Each *_advance method follows clone_advance's contract: do the next missing piece,
    # report where it stands, never repeat a piece already done for `operation_id`.

    def restore_in_place_advance(self, req: InPlaceRestoreRequest) -> JobStatus:
        raise PermanentError(f"The {self.name} platform cannot restore a cluster in place.")

    def power_advance(self, ref: ClusterRef, *, operation_id: str, shutdown: bool,
                      acknowledge_split_brain: bool = False) -> JobStatus:
        """Shut the cluster down (`shutdown`) or start it, and verify it is so. Starting a
        former primary while a standby promoted from it is writable raises PermanentError
        naming that cluster, unless `acknowledge_split_brain`."""
        raise PermanentError(f"The {self.name} platform cannot shut down or start clusters.")

    def standby_advance(self, req: StandbyRequest) -> JobStatus:
        raise PermanentError(f"The {self.name} platform cannot create standby clusters.")

    # True: the platform itself refuses to promote a standby while its source runs as a
    # primary, always (it can see every source), so the console never offers the "old
    # primary is gone for good" acknowledgement. False: it can check only sources it sees.
    checks_standby_source: bool = False

    def promote_advance(self, ref: ClusterRef, *, operation_id: str) -> JobStatus:
        """Promote a standby to a primary, and verify its leader says so."""
        raise PermanentError(f"The {self.name} platform cannot promote standby clusters.")

    # --- drills: a scratch clone, verified, then deleted ------------------------------------
    # False: the console refuses drills on this platform (it cannot verify or delete one).
    drills: bool = False

    def verify(self, ref: ClusterRef, *, source: ClusterRef) -> Verification:
        """Read-only checks of a restored cluster (a drill's scratch copy), and the system
        identifier of `source` to compare it with. Never writes to either."""
        raise PermanentError(f"The {self.name} platform cannot verify a restored cluster.")

    def query(self, ref: ClusterRef, sql: str, *, database: str = "postgres",
              timeout_s: float = 30.0) -> QueryResult:
        """Run one statement in `database` of the cluster, read-only
        (default_transaction_read_only) and under a statement timeout. PermanentError when
        PostgreSQL rejects it (its message says why), TransientError while unreachable."""
        raise PermanentError(f"The {self.name} platform cannot run a drill's SQL checks.")

    def amcheck(self, ref: ClusterRef, *, database: str,
                relations: tuple[str, ...] = ()) -> AmcheckResult:
        """pg_amcheck (heap and btree, installing the amcheck extension where missing: only
        ever in a scratch copy) on every relation of `database`, or the ones named."""
        raise PermanentError(f"The {self.name} platform cannot run pg_amcheck.")

    def cluster_destroy(self, ref: ClusterRef, *, operation_id: str | None = None) -> Applied:
        """Delete the cluster with its data and everything it wrote. With `operation_id`
        (a drill's scratch copy), only if that operation's clone created it: PermanentError
        when something else owns the name, which is left alone. Idempotent: a cluster
        already gone is not an error."""
        raise PermanentError(f"The {self.name} platform cannot delete clusters.")
