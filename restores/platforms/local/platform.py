"""The local platform: PostgreSQL clusters and pgBackRest repos on this host, in one fleet
directory (layout in fleet.py), run as one unprivileged OS user (proc.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
import re
import shlex
import shutil
import time
from pathlib import Path
from typing import TypeVar

from ..base import (
    FORMER_PRIMARY,
    Applied,
    BackupType,
    ClonePlan,
    CloneRequest,
    ClusterRef,
    ClusterStatus,
    InPlaceRestoreRequest,
    JobStatus,
    PermanentError,
    Platform,
    PlatformError,
    RepoInventory,
    Role,
    StandbyRequest,
    TransientError,
    Verification,
)
from . import operations as ops
from .backrest import REPOS, Backrest
from .clone import IN_PROGRESS, Cloner
from .database import connect_hint, load_demo_data, query
from .fleet import CONF_MARKER, ClusterRecord, Fleet, validate_cluster_name
from .inplace import InPlaceRestorer
from .phases import PhaseMachine
from .proc import PGBACKREST, Runner, find_pg_bindir, resolve_account
from .promotion import Promoter
from .standby import Standbys
from .verify import verify as verify_restore

POLL_SECONDS = 0.5
M = TypeVar("M", bound=PhaseMachine)
# How soon an operation looks again at a restore, backup or server of this host: checking
# costs a few file reads and a pg_ctl status, and every restore waits for it twice (its end,
# the promotion). settings.DR_LOCAL_POLL_MS sets it for the console.
POLL_INTERVAL = dt.timedelta(milliseconds=250)


class LocalPlatform(Platform):
    """Clusters on this host. Construction is cheap and has no side effects; the first call
    checks and prepares the fleet directory and raises PermanentError if it is unusable."""

    name = "local"
    drills = True
    # Every standby's source is a cluster of this host: promotion checks it every time.
    checks_standby_source = True
    # Restores here compete with the running clusters for this host's cores: more processes
    # than twice the cores only adds contention.
    process_max_limit = max(1, min(16, 2 * (os.cpu_count() or 1)))

    def __init__(
        self,
        *,
        fleet_dir: Path,
        run_as: str | None = None,
        namespace: str = "local",
        port_base: int = 55432,
        pg_bindir: str | None = None,
        poll_interval: dt.timedelta = POLL_INTERVAL,
    ) -> None:
        self.fleet_dir = Path(fleet_dir).absolute()
        self.run_as = run_as
        self.namespace = namespace
        self.port_base = port_base
        self.pg_bindir = pg_bindir
        self.poll_interval = poll_interval

    # -- set-up --------------------------------------------------------------------------

    @functools.cached_property
    def _fleet(self) -> Fleet:
        fleet = Fleet(self.fleet_dir, resolve_account(self.run_as))
        fleet.prepare()
        return fleet

    @functools.cached_property
    def _runner(self) -> Runner:
        return Runner(self._fleet.account, find_pg_bindir(self.pg_bindir), self.fleet_dir)

    @functools.cached_property
    def _backrest(self) -> Backrest:
        return Backrest(self._fleet, self._runner)

    def _machine(self, kind: type[M]) -> M:
        """The fleet's phase machine of one kind (clone, standby, in-place, promotion)."""
        return kind(self._fleet, self._runner, self._backrest, namespace=self.namespace,
                    port_base=self.port_base)

    @functools.cached_property
    def _cloner(self) -> Cloner:
        return self._machine(Cloner)

    @functools.cached_property
    def _inplace(self) -> InPlaceRestorer:
        return self._machine(InPlaceRestorer)

    @functools.cached_property
    def _standbys(self) -> Standbys:
        return self._machine(Standbys)

    @functools.cached_property
    def _promoter(self) -> Promoter:
        return self._machine(Promoter)

    @functools.cached_property
    def _pg_version(self) -> str:
        """The server binaries' version, e.g. "15.20" (what `show server_version` starts with)."""
        out = self._runner.run([self._bin("postgres"), "--version"], what="postgres --version")
        match = re.search(r"\) (\d+(?:\.\d+)?)", out.stdout)
        return match.group(1) if match else ""

    def _bin(self, program: str) -> str:
        return str(self._runner.bindir / program)

    def _ref(self, name: str) -> ClusterRef:
        return ClusterRef(namespace=self.namespace, name=name)

    def _record(self, ref: ClusterRef) -> ClusterRecord:
        """The cluster's record; PermanentError when this fleet has no such cluster."""
        record = None
        if ref.namespace == self.namespace and _valid_name(ref.name):
            record = self._fleet.record(ref.name)
        if record is None:
            raise PermanentError(
                f"There is no local cluster {ref.name!r} in namespace {ref.namespace!r}."
            )
        return record

    # -- status --------------------------------------------------------------------------

    def clusters(self) -> list[ClusterStatus]:
        return [self._status(record) for record in self._fleet.records()]

    def cluster_status(self, ref: ClusterRef) -> ClusterStatus:
        return self._status(self._record(ref))

    def _status(self, record: ClusterRecord) -> ClusterStatus:
        status = functools.partial(
            ClusterStatus,
            self._ref(record.name),
            repos=REPOS,
            connect_hint=connect_hint(self._fleet, record),
        )
        if record.state:  # a clone or a standby being made, or one that failed
            describe = self._standbys.describe if record.standby_of else self._cloner.describe
            word, message = describe(record)
            role: Role = "unknown"
            # Unknown until promoted: a recovering server reports itself in recovery.
            if record.state not in ("restoring", "recovering"):
                role = "shutdown"
                if self._running(record):
                    role = "unknown"
                    with contextlib.suppress(PlatformError):
                        rows = query(self._fleet, record, "select pg_is_in_recovery()")
                        role = "standby" if rows[0][0] else "primary"
            return status(role, record.pg_version, word, message)
        busy = self._busy_message(record)
        if not self._running(record):
            if busy:
                return status("shutdown", record.pg_version, busy[0], busy[1])
            return status("shutdown", record.pg_version, "stopped", "PostgreSQL is not running.")
        try:
            rows = query(
                self._fleet, record, "select pg_is_in_recovery(), current_setting('server_version')"
            )
        except TransientError as exc:
            word = busy[0] if busy else "starting"
            return status("unknown", record.pg_version, word, exc.message)
        in_recovery, version = rows[0]
        role = "standby" if in_recovery else "primary"
        version = str(version).split()[0]
        if busy:
            return status(role, version, busy[0], busy[1])
        if record.is_standby:
            source = (record.standby_of or {}).get("source")
            repo = (record.standby_of or {}).get("repo")
            return status(
                role,
                version,
                "ready",
                f"PostgreSQL {version} is running as a {role} of {source}, replaying "
                f"{source}'s {repo}.",
            )
        if not record.initialized:
            return status(
                role, version, "creating", "Creation has not finished; create it again to resume."
            )
        if (record.clone_of or {}).get("scratch"):
            source = (record.clone_of or {}).get("source")
            return status(role, version, "ready", f"A drill's scratch copy of {source}, with "
                          "archiving off; deleted when the drill ends.")
        return status(role, version, "ready", f"PostgreSQL {version} is running as a {role}.")

    def _busy_message(self, record: ClusterRecord) -> tuple[str, str] | None:
        """(state word, sentence) while an in-place restore or a promotion owns the cluster."""
        busy = record.busy or {}
        if busy.get("kind") == "restore-in-place":
            return "restoring", self._inplace.describe(busy, record.name)
        if busy.get("kind") == "promote":
            return "promoting", self._promoter.describe(busy, record.name)
        return None

    def _power_refusal(self, record: ClusterRecord) -> str | None:
        """Why the cluster must not be shut down or started now, or None."""
        name, busy = record.name, record.busy or {}
        if record.state in IN_PROGRESS and record.clone_of is not None:
            return (
                f"{name} is a clone still being made ({record.state}): it cannot be shut down "
                "or started until the clone finishes (or destroy it)."
            )
        if record.state in ("restoring", "starting") and record.standby_of is not None:
            return (
                f"{name} is still being made a standby ({record.state}): it cannot be shut "
                "down or started until that finishes (or destroy it)."
            )
        if busy:
            what = {"restore-in-place": "restored in place", "promote": "promoted"}
            return (
                f"{name} is being {what.get(str(busy.get('kind')), busy.get('kind'))} by "
                f"operation {busy.get('operation_id')}: it cannot be shut down or started "
                "until that ends."
            )
        return None

    def _running(self, record: ClusterRecord) -> bool:
        """pg_ctl status: 0 running, 3 not running, 4 no usable data directory."""
        if not (self._fleet.pgdata(record.name) / "PG_VERSION").exists():
            return False
        argv = [self._bin("pg_ctl"), "status", "-D", str(self._fleet.pgdata(record.name))]
        return self._runner.run(argv, what="pg_ctl status", check=False, timeout=30).returncode == 0

    # -- lifecycle -----------------------------------------------------------------------

    def cluster_create(self, name: str) -> ClusterStatus:
        """Create, start and register a cluster with its stanza. Idempotent: an existing
        cluster is started if needed; an interrupted creation resumes where it stopped."""
        validate_cluster_name(name)
        fleet = self._fleet
        with fleet.lock():
            record = fleet.record(name)
            if record is not None and record.state:
                raise PermanentError(
                    f"{name} is a clone or standby that has not finished ({record.state}): "
                    "advance or destroy it instead."
                )
            if record is not None and record.is_standby:
                raise PermanentError(f"{name} is a standby: promote it, or destroy it.")
            if record is None:
                record = fleet.new_record(
                    name, port_base=self.port_base, pg_version=self._pg_version
                )
                fleet.make_dir(fleet.cluster_dir(name))
                fleet.save_record(record)
            if not record.initialized:
                record = self._initialize(record)
        self.cluster_start(self._ref(name))
        return self._status(record)

    def _initialize(self, record: ClusterRecord) -> ClusterRecord:
        """initdb, configure, start, stanza-create, check; each step safe to repeat."""
        fleet = self._fleet
        for path in fleet.pgbackrest_dirs(record.name).values():
            fleet.make_dir(path)
        fleet.make_dir(fleet.repo_path(record.name).parent, 0o700)
        fleet.write_file(fleet.config_path(record.name), fleet.pgbackrest_conf(record))
        self._initdb(record)
        self.cluster_start(self._ref(record.name))
        self._backrest.setup_stanza(record)
        record = dataclasses.replace(record, initialized=True)
        fleet.save_record(record)
        return record

    def _initdb(self, record: ClusterRecord) -> None:
        pgdata = self._fleet.pgdata(record.name)
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():  # left over from an interrupted initdb
                shutil.rmtree(pgdata)
            options = "-U postgres --data-checksums --auth=trust -E UTF8 --locale=C.UTF-8"
            argv = [self._bin("initdb"), "-D", str(pgdata), *options.split()]
            self._runner.run(argv, what="initdb")
        conf = pgdata / "postgresql.conf"
        if CONF_MARKER not in conf.read_text():
            with conf.open("a") as handle:
                handle.write(self._fleet.postgresql_conf(record, PGBACKREST))

    def cluster_start(self, ref: ClusterRef) -> Applied:
        """Start the server and wait until it accepts connections. Idempotent."""
        record = self._record(ref)
        if record.state == "restoring":
            raise TransientError(f"{record.name} is still being restored: it cannot start yet.")
        if record.busy:
            raise PermanentError(str(self._power_refusal(record)))
        if self._running(record):
            return Applied(f"{record.name} is already running.")
        pgdata, log = self._fleet.pgdata(record.name), self._fleet.server_log(record.name)
        argv = [self._bin("pg_ctl"), *"start -w -t 120 -D".split(), str(pgdata), "-l", str(log)]
        # Own session: a Ctrl-C or a dying worker in our process group must not reach it.
        proc = self._runner.run(
            argv, what="pg_ctl start", check=False, timeout=150, new_session=True
        )
        if proc.returncode != 0:
            tail = self._server_log_tail(record)
            raise TransientError(
                f"PostgreSQL {record.name} did not start: {_last_line(tail)}",
                detail=f"{proc.stdout}{proc.stderr}\n{tail}",
            )
        return Applied(f"Started {record.name}.", command=shlex.join(argv))

    def cluster_stop(self, ref: ClusterRef) -> Applied:
        """Fast shutdown (disconnects sessions, rolls back open transactions). Idempotent.
        Refused while an in-place restore or a promotion owns the cluster."""
        record = self._record(ref)
        if record.busy:
            raise PermanentError(str(self._power_refusal(record)))
        return self._stop(record)

    def _stop(self, record: ClusterRecord) -> Applied:
        if not self._running(record):
            return Applied(f"{record.name} is already stopped.")
        pgdata = str(self._fleet.pgdata(record.name))
        argv = [self._bin("pg_ctl"), *"stop -m fast -w -t 120 -D".split(), pgdata]
        self._runner.run(argv, what="pg_ctl stop", timeout=150)
        return Applied(f"Stopped {record.name}.", command=shlex.join(argv))

    def power_advance(self, ref: ClusterRef, *, operation_id: str, shutdown: bool,
                      acknowledge_split_brain: bool = False) -> JobStatus:
        """Stop (fast) or start the server, then verify through pg_ctl status that it is so.
        Idempotent: both calls do nothing on a cluster already in the wanted state.

        PermanentError while a clone, a standby creation, an in-place restore or a
        promotion of this cluster is under way. A primary switches WAL before it stops, so
        its last commits reach the repo (the clean shutdown lets the archiver finish): a
        standby fed from that repo then loses nothing when it is promoted (§4.7, step 1)."""
        record = self._record(ref)
        refusal = self._power_refusal(record)
        if refusal:
            raise PermanentError(refusal)
        if not shutdown and not acknowledge_split_brain and not self._running(record):
            promoted = self._writable_successors(record.name)
            if promoted:
                raise PermanentError(FORMER_PRIMARY.format(cluster=record.name,
                                                           promoted=", ".join(promoted)))
        if shutdown and self._running(record):
            ops.switch_wal(self._fleet, record)
        applied = self.cluster_stop(ref) if shutdown else self.cluster_start(ref)
        status = self.cluster_status(ref)
        if (status.role == "shutdown") == shutdown:
            word = "shut down" if shutdown else "running"
            return JobStatus("succeeded", message=f"{ref.name} is {word}: {status.message}",
                             detail=applied.command)
        return JobStatus("running", message=status.message, detail=applied.command)

    def _writable_successors(self, name: str) -> list[str]:
        """Clusters promoted from standbys of `name` that run as primaries now (one that runs
        but does not answer counts: it may be writable)."""
        found = []
        for other in self._fleet.records():
            standby_of = other.standby_of or {}
            if standby_of.get("source") != name or not standby_of.get("promoted_by"):
                continue
            if not self._running(other):
                continue
            try:
                ((in_recovery,),) = query(self._fleet, other, "select pg_is_in_recovery()")
            except TransientError:
                in_recovery = False
            if not in_recovery:
                found.append(other.name)
        return found

    def cluster_destroy(self, ref: ClusterRef, *, operation_id: str | None = None) -> Applied:
        """Stop the cluster and its backups (or a clone's restore), then delete its data,
        repo, logs and config. Irreversible: for tests, drills and abandoned clones.

        With `operation_id` (a drill's scratch copy): only the clone that operation made,
        and idempotent: a name with nothing under it is already destroyed; an empty
        directory (a clone that died before writing its record) is removed."""
        if operation_id is None:
            record = self._record(ref)
        else:
            if not self.cluster_exists(ref):
                return Applied(f"{ref.name} is already deleted.")
            record = self._fleet.record(ref.name) if _valid_name(ref.name) else None
            if record is None:
                return self._remove_empty(ref)
            if (record.clone_of or {}).get("operation_id") != operation_id:
                raise PermanentError(
                    f"{ref.name} was not made by operation {operation_id}: it is left alone."
                )
        with self._fleet.lock(), self._cloner.hold(record.name):
            self._backrest.jobs.terminate_all(record.name)
            self._stop(self._fleet.record(record.name) or record)
            self._fleet.remove_cluster(record.name)
        return Applied(f"Stopped {record.name} and deleted its data directory, logs and "
                       "job files.")

    def _remove_empty(self, ref: ClusterRef) -> Applied:
        fleet = self._fleet
        with fleet.lock():
            in_the_way = fleet.in_the_way(ref.name)
            cluster_dir = fleet.cluster_dir(ref.name)
            if in_the_way and (in_the_way != [cluster_dir] or any(cluster_dir.iterdir())):
                raise PermanentError(
                    f"{ref.name} has files but no record: it is not a drill's scratch copy "
                    "and is left alone."
                )
            if in_the_way:
                cluster_dir.rmdir()
        return Applied(f"{ref.name} is already deleted.")

    def verify(self, ref: ClusterRef, *, source: ClusterRef) -> Verification:
        """Read-only queries on the restored cluster; the source's system identifier from
        its control file (verify.py)."""
        source_record = self._fleet.record(source.name) if _valid_name(source.name) else None
        return verify_restore(self._fleet, self._runner, self._record(ref), source_record)

    def _server_log_tail(self, record: ClusterRecord) -> str:
        try:
            return self._fleet.server_log(record.name).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

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
        if ref.namespace != self.namespace or not _valid_name(ref.name):
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


def _valid_name(name: str) -> bool:
    try:
        validate_cluster_name(name)
    except PermanentError:
        return False
    return True


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "see the server log"


NO_CLOUD_SOURCE = (
    "The local platform clones its own clusters' repos; a cloud repo with no live cluster "
    "is restored on Kubernetes (PGO's spec.dataSource.pgbackrest)."
)


def _live_source(req: CloneRequest) -> CloneRequest:
    if req.source is None:
        raise PermanentError(NO_CLOUD_SOURCE)
    return req
