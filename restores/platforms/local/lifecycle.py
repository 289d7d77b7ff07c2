"""A local cluster's life: created (initdb, its stanza), started, stopped, shut down or
started by an operation (refused for a former primary whose promoted standby writes), and
destroyed with all it wrote."""

from __future__ import annotations

import dataclasses
import shlex
import shutil

from ..base import (
    FORMER_PRIMARY,
    AmcheckResult,
    Applied,
    ClusterRef,
    ClusterStatus,
    JobStatus,
    PermanentError,
    QueryResult,
    TransientError,
    Verification,
)
from . import operations as ops
from .core import valid_name
from .database import query
from .fleet import CONF_MARKER, ClusterRecord, validate_cluster_name
from .proc import PGBACKREST
from .status import StatusMixin
from .verify import amcheck as run_amcheck
from .verify import read_only_query
from .verify import verify as verify_restore


class LifecycleMixin(StatusMixin):
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
            record = self._fleet.record(ref.name) if valid_name(ref.name) else None
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
        source_record = self._fleet.record(source.name) if valid_name(source.name) else None
        return verify_restore(self._fleet, self._runner, self._record(ref), source_record)

    def query(self, ref: ClusterRef, sql: str, *, database: str = "postgres",
              timeout_s: float = 30.0) -> QueryResult:
        return read_only_query(self._fleet, self._record(ref), sql, database=database,
                               timeout_s=timeout_s)

    def amcheck(self, ref: ClusterRef, *, database: str,
                relations: tuple[str, ...] = ()) -> AmcheckResult:
        return run_amcheck(self._fleet, self._runner, self._record(ref), database=database,
                           relations=relations)

    def _server_log_tail(self, record: ClusterRecord) -> str:
        try:
            return self._fleet.server_log(record.name).read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "see the server log"
