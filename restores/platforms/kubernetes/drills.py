"""Drills on Kubernetes: verify a restored PostgresCluster with `psql` in its leader pod's
database container, and delete the scratch cluster a drill made (and only that one).

The scratch copy is the ordinary clone (clones.py): PGO gives every cluster a repo of its
own, so on Kubernetes the scratch cluster archives into its own volume repo (deleted with
it), never into the source's.
"""

from __future__ import annotations

import datetime as dt
import shlex

from ..base import (
    AmcheckResult,
    Applied,
    ClusterRef,
    DatabaseFacts,
    PermanentError,
    QueryResult,
    TransientError,
    Verification,
)
from ..verify_sql import DATABASES, SERVER, USER_TABLES
from . import state
from .backups import CONTAINER
from .core import OPERATION_ANNOTATION, KubeCore

NO_LEADER = "{name} has no running leader pod to verify yet."
PSQL_FAILED = "psql in {pod} failed (exit {code}): {error}"
NOT_OURS = (
    "PostgresCluster {namespace}/{name} was not created by operation {operation}: it is left "
    "alone."
)


def psql_argv(sql: str, database: str = "postgres") -> list[str]:
    """`psql` as the database container runs it for the postgres user over the local socket:
    unaligned, tuples only, tab-separated, no psqlrc."""
    return ["psql", "-X", "-A", "-t", "-F", "\t", "-d", database, "-c", sql]


def read_only_argv(sql: str, database: str, timeout_s: float) -> list[str]:
    """psql as psql_argv, in a read-only session with a statement timeout (PGOPTIONS), the
    NULLs printed as a marker a value cannot be."""
    options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
    return ["env", f"PGOPTIONS={options}", *psql_argv(sql, database)[:-2], "-P",
            f"null={NULL}", "-c", sql]


NULL = "\\N"
# pg_amcheck's exit status: 0 nothing found, 2 corruption found; anything else an error.
AMCHECK_CORRUPT = 2


class DrillsMixin(KubeCore):
    drills = True

    def _psql(self, ref: ClusterRef, pod: str, sql: str,
              database: str = "postgres") -> list[list[str]]:
        code, out, err = self.kube.exec(ref.namespace, pod, CONTAINER, psql_argv(sql, database))
        if code != 0:
            raise TransientError(PSQL_FAILED.format(pod=pod, code=code,
                                                    error=(err or out).strip()[:300]))
        return [line.split("\t") for line in out.splitlines() if line]

    def _leader(self, ref: ClusterRef) -> str:
        self.check_namespace(ref)
        pod = state.running_leader(self.leaders(ref))
        if pod is None:
            raise TransientError(NO_LEADER.format(name=ref.name))
        return pod

    def _exec_line(self, ref: ClusterRef, pod: str, argv: list[str]) -> str:
        return f"kubectl -n {ref.namespace} exec {pod} -c {CONTAINER} -- {shlex.join(argv)}"

    def query(self, ref: ClusterRef, sql: str, *, database: str = "postgres",
              timeout_s: float = 30.0) -> QueryResult:
        """The statement by `psql` in the leader's database container, read-only."""
        pod = self._leader(ref)
        argv = read_only_argv(sql, database, timeout_s)
        code, out, err = self.kube.exec(ref.namespace, pod, CONTAINER, argv)
        if code != 0:
            raise PermanentError(PSQL_FAILED.format(pod=pod, code=code,
                                                    error=(err or out).strip()[:300]),
                                 detail=self._exec_line(ref, pod, argv))
        rows = tuple(tuple(None if v == NULL else v for v in line.split("\t"))
                     for line in out.splitlines() if line)
        return QueryResult(rows, command=self._exec_line(ref, pod, argv))

    def amcheck(self, ref: ClusterRef, *, database: str,
                relations: tuple[str, ...] = ()) -> AmcheckResult:
        """pg_amcheck in the leader's database container, over its local socket."""
        pod = self._leader(ref)
        argv = ["pg_amcheck", "--install-missing", "--heapallindexed", "-d", database]
        for relation in relations:
            argv += ["-r", relation]
        code, out, err = self.kube.exec(ref.namespace, pod, CONTAINER, argv)
        findings = (out + err).strip()
        if code not in (0, AMCHECK_CORRUPT):
            raise PermanentError(f"pg_amcheck in {pod} could not check {database} (exit "
                                 f"{code}): {findings[:300]}",
                                 detail=self._exec_line(ref, pod, argv))
        return AmcheckResult(ok=code == 0 and not findings, findings=findings,
                             command=self._exec_line(ref, pod, argv))

    def verify(self, ref: ClusterRef, *, source: ClusterRef) -> Verification:
        """The queries of verify_sql in the scratch cluster's leader (one exec each, one per
        database for its tables); the source's system identifier from its PostgresCluster
        status (status.patroni.systemIdentifier), without exec'ing in the source."""
        self.check_namespace(ref)
        pod = state.running_leader(self.leaders(ref))
        if pod is None:
            raise TransientError(NO_LEADER.format(name=ref.name))
        ((version, in_recovery, system_id, replayed),) = self._psql(ref, pod, SERVER)
        databases = []
        for name, size in self._psql(ref, pod, DATABASES):
            ((tables,),) = self._psql(ref, pod, USER_TABLES, name)
            databases.append(DatabaseFacts(name, int(size), int(tables)))
        src = self.kube.get_cluster(source.namespace, source.name) or {}
        source_id = str(((src.get("status") or {}).get("patroni") or {}).get(
            "systemIdentifier") or "")
        exec_line = f"kubectl -n {ref.namespace} exec {pod} -c {CONTAINER} -- "
        return Verification(
            server_version=version.split()[0], system_identifier=system_id,
            source_system_identifier=source_id, in_recovery=in_recovery == "t",
            databases=tuple(databases),
            last_replayed_commit=(dt.datetime.fromisoformat(replayed).astimezone(dt.UTC)
                                  if replayed else None),
            command="\n".join(exec_line + shlex.join(psql_argv(q))
                              for q in (SERVER, DATABASES, USER_TABLES)),
        )

    def cluster_destroy(self, ref: ClusterRef, *, operation_id: str | None = None) -> Applied:
        """Delete the PostgresCluster (PGO removes its pods, volumes and repo). With
        `operation_id`, only if that operation created it. Already gone: nothing to do."""
        self.check_namespace(ref)
        command = f"kubectl -n {ref.namespace} delete postgrescluster {ref.name}"
        obj = self.kube.get_cluster(ref.namespace, ref.name)
        if obj is None:
            return Applied(f"{ref.name} is already deleted.", command=command)
        if operation_id is not None and (
                state.annotations(obj).get(OPERATION_ANNOTATION) != operation_id):
            raise PermanentError(NOT_OURS.format(namespace=ref.namespace, name=ref.name,
                                                 operation=operation_id))
        if not obj["metadata"].get("deletionTimestamp"):
            self.kube.delete_cluster(ref.namespace, ref.name)
        return Applied(f"Deleted PostgresCluster {ref.namespace}/{ref.name}; PGO removes its "
                       "pods and volumes.", command=command)
