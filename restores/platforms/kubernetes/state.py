"""Reading PGO's PostgresCluster status: pure functions over the API's dicts (no I/O).

§ numbers refer to shared/pgo/PGO-REFERENCE.md; §9 has the "done" predicates used here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from ..base import WARNINGS_KEPT, ClusterRef, ClusterStatus, ClusterWarning, Condition, Role
from ..manifests import BACKUP_ANNOTATION, PFX, RESTORE_ANNOTATION

CLUSTER_LABEL = PFX + "cluster"
ROLE_LABEL = PFX + "role"
INSTANCE_LABEL = PFX + "instance"
LEADER_SELECTOR = f"{ROLE_LABEL}=master"  # Patroni's leader, standby leaders included (§8.1)
BOOTSTRAP_ID = "~pgo-bootstrap-{name}"
RESTORE_JOB = "{name}-pgbackrest-restore"
# Warning events that explain a restore or a backup that does not start (§7).
DATA_SOURCE_EVENTS = ("InvalidDataSource",)
BACKUP_EVENTS = ("StanzaNotCreated", "InvalidBackupRepo", "InvalidManualBackup")
STANDBY_EVENTS = ("InvalidStandbyConfiguration",)


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def pgbackrest_status(obj: dict[str, Any]) -> dict[str, Any]:
    return status(obj).get("pgbackrest") or {}


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status(obj).get("conditions") or () if c.get("type") == kind), None)


def is_true(obj: dict[str, Any], kind: str, reason: str | None = None) -> bool:
    cond = condition(obj, kind)
    return bool(cond and cond.get("status") == "True" and reason in (None, cond.get("reason")))


def is_false(obj: dict[str, Any], kind: str, reason: str | None = None) -> bool:
    cond = condition(obj, kind)
    return bool(cond and cond.get("status") == "False" and reason in (None, cond.get("reason")))


def repo_names(obj: dict[str, Any]) -> tuple[str, ...]:
    repos = ((spec(obj).get("backups") or {}).get("pgbackrest") or {}).get("repos") or ()
    return tuple(str(r.get("name")) for r in repos)


def repo_kinds(obj: dict[str, Any]) -> dict[str, str]:
    """{repo name: posix | s3 | gcs | azure} of spec.backups.pgbackrest.repos (§1.2)."""
    repos = ((spec(obj).get("backups") or {}).get("pgbackrest") or {}).get("repos")
    kinds = {}
    for repo in repos or ():
        kind = next((k for k in ("s3", "gcs", "azure") if k in repo), "posix")
        kinds[str(repo.get("name"))] = kind
    return kinds


def running_leader(pods: Iterable[dict[str, Any]]) -> str | None:
    """The name of the Running database pod among a cluster's role=master pods: the one to
    ask pgBackRest (None: shut down, starting, or between leaders)."""
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if (pod.get("status") or {}).get("phase") == "Running" and \
                labels.get(f"{PFX}data") == "postgres":
            return str(pod["metadata"]["name"])
    return None


def backups_fingerprint(obj: dict[str, Any], leaders: list[dict[str, Any]]) -> str:
    """A digest of what may change the leader's `pgbackrest info`, as far as the API shows it.

    status.pgbackrest (§5) is where PGO records backup activity: `repos` (stanza created,
    replica-create backup done, repo volume or options hash), `manualBackup` (id, start,
    completion, counts), `scheduledBackups` (one entry per CronJob Job still there), `restore`
    (an in-place restore resets the whole section) and `repoHost`; every backup PGO runs
    changes it at its start and at its end. Besides: the repos' kinds in the spec (repos()
    reports them) and the running leader (the pod asked; none when shut down). Not covered,
    hence DR_REPO_MAX_AGE: WAL archiving (the window's end), backups or expires run by hand,
    and a standby's view of its primary's repo.
    """
    pgbackrest = dict(pgbackrest_status(obj))
    if pgbackrest.get("scheduledBackups"):  # built from a Job list: order is not a change
        pgbackrest["scheduledBackups"] = sorted(
            pgbackrest["scheduledBackups"], key=lambda job: json.dumps(job, sort_keys=True))
    seen = {"pgbackrest": pgbackrest, "kinds": repo_kinds(obj), "leader": running_leader(leaders)}
    text = json.dumps(seen, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def standby_in_spec(obj: dict[str, Any]) -> bool:
    """§1.4: any `standby` object without enabled=false asks for a standby (CRD default)."""
    standby = spec(obj).get("standby")
    return isinstance(standby, dict) and standby.get("enabled", True) is not False


def patroni_role(pod: dict[str, Any]) -> str:
    """The role in the pod's Patroni `status` annotation (master, primary, standby_leader,
    replica), or "" when Patroni has not written one."""
    raw = annotations(pod).get("status") or ""
    try:
        return str((json.loads(raw) or {}).get("role") or "")
    except (ValueError, AttributeError):
        return ""


def leader_is_writable(pod: dict[str, Any]) -> bool:
    """PGO's Instance.IsWritable: the Patroni role is master or primary (§9)."""
    return patroni_role(pod) in ("master", "primary")


def instance_sets(obj: dict[str, Any]) -> list[tuple[str, int]]:
    """(name, replicas) of each spec.instances entry; unnamed sets are "00", "01"… (§1.1)."""
    return [
        (str(item.get("name") or f"{index:02d}"), int(item.get("replicas") or 1))
        for index, item in enumerate(spec(obj).get("instances") or ())
    ]


def not_ready_reasons(obj: dict[str, Any], leaders: list[dict[str, Any]]) -> list[str]:
    """Why the cluster is not "ready" by §9 ([] when it is)."""
    reasons = []
    meta, st = obj.get("metadata") or {}, status(obj)
    if st.get("observedGeneration") != meta.get("generation"):
        reasons.append("PGO has not caught up with the latest spec change")
    if not (st.get("patroni") or {}).get("systemIdentifier"):
        reasons.append("PostgreSQL has not been initialised yet")
    if condition(obj, "PGBackRestoreProgressing") is not None:
        reasons.append("a restore is in progress")
    seen = {i.get("name"): i for i in st.get("instances") or ()}
    for name, replicas in instance_sets(obj):
        found = seen.get(name) or {}
        counts = [found.get(k) or 0 for k in ("readyReplicas", "replicas", "updatedReplicas")]
        if counts != [replicas] * 3:
            reasons.append(f"instance set {name}: {counts[0]} of {replicas} ready")
    if len(leaders) != 1:
        reasons.append(f"{len(leaders)} pods carry the leader label (expected 1)")
    return reasons


def is_shut_down(obj: dict[str, Any]) -> bool:
    """PGO's own predicate (pgupgrade/world.go; recorded/README "Contradicts" 8): shutdown
    asked, the spec observed, and no instance pod observed in status."""
    meta, st = obj.get("metadata") or {}, status(obj)
    return (
        spec(obj).get("shutdown") is True
        and st.get("observedGeneration") == meta.get("generation")
        and all((i.get("replicas") or 0) == 0 for i in st.get("instances") or ())
    )


def timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def newest_event(events: Iterable[dict[str, Any]], reasons: Iterable[str]) -> dict | None:
    wanted = set(reasons)
    found = [e for e in events if e.get("reason") in wanted]
    return max(found, key=lambda e: str(e.get("lastTimestamp") or ""), default=None)


def conditions(obj: dict[str, Any]) -> tuple[Condition, ...]:
    """status.conditions as PGO wrote them, in its order."""
    return tuple(
        Condition(type=str(c.get("type", "")), status=str(c.get("status", "Unknown")),
                  reason=str(c.get("reason") or ""), message=str(c.get("message") or ""),
                  since=timestamp(c.get("lastTransitionTime")))
        for c in status(obj).get("conditions") or () if c.get("type")
    )


def _event_time(event: dict[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or "")


def warnings(events: Iterable[dict[str, Any]]) -> tuple[ClusterWarning, ...]:
    """The newest Warning events about the cluster, newest first, WARNINGS_KEPT at most."""
    newest = sorted((e for e in events if e.get("type", "Warning") == "Warning"),
                    key=_event_time, reverse=True)[:WARNINGS_KEPT]
    return tuple(
        ClusterWarning(reason=str(e.get("reason") or ""), message=str(e.get("message") or ""),
                       at=timestamp(_event_time(e)),
                       count=int(e.get("count") or (e.get("series") or {}).get("count") or 1))
        for e in newest
    )


def restore_verdict(obj: dict[str, Any], events: list[dict[str, Any]]) -> tuple[str, str]:
    """For a cluster whose status has a restore: ("failed" | "running" | "done", sentence)."""
    restore = pgbackrest_status(obj).get("restore") or {}
    name = obj["metadata"]["name"]
    job = RESTORE_JOB.format(name=name)
    if (restore.get("finished") and (restore.get("failed") or 0) > 0) or is_false(
        obj, "PostgresDataInitialized", "PGBackRestRestoreFailed"
    ):
        return "failed", (
            f"The restore Job {job} failed (PGO: PGBackRestRestoreFailed); PGO will not retry "
            "it until a restore input changes."
        )
    if restore.get("finished") and (restore.get("succeeded") or 0) >= 1:
        return "done", "The restore Job finished."
    if not restore.get("startTime"):
        event = newest_event(events, DATA_SOURCE_EVENTS)
        if event is not None:  # §9: an InvalidDataSource warning and no restore Job
            return "failed", f"PGO refused the data source: {event.get('message')}"
    progress = condition(obj, "PGBackRestoreProgressing") or {}
    phase = progress.get("message") or progress.get("reason") or "the restore is starting"
    return "running", f"Restoring: {phase}" + (
        f" (Job {job} running)" if restore.get("active") else ""
    )


def restoring(obj: dict[str, Any]) -> bool:
    restore = pgbackrest_status(obj).get("restore") or {}
    return condition(obj, "PGBackRestoreProgressing") is not None or bool(
        restore and not restore.get("finished")
    )


def connect_hint(ref: ClusterRef) -> str:
    selector = f"{CLUSTER_LABEL}={ref.name},{LEADER_SELECTOR}"
    return (
        f"kubectl -n {ref.namespace} exec -it -c database "
        f"$(kubectl -n {ref.namespace} get pod -l {selector} -o name) -- psql"
    )


def derive(
    obj: dict[str, Any], leaders: list[dict[str, Any]], events: list[dict[str, Any]]
) -> ClusterStatus:
    """The cluster's role, state word and sentence, from its object, its `role=master` pods
    and its Warning events."""
    meta = obj["metadata"]
    ref = ClusterRef(meta.get("namespace", ""), meta["name"])
    version = str(status(obj).get("postgresVersion") or spec(obj).get("postgresVersion") or "")
    standby = standby_in_spec(obj) or any(patroni_role(p) == "standby_leader" for p in leaders)
    role: Role = "standby" if standby else ("primary" if leaders else "unknown")

    fingerprint = backups_fingerprint(obj, leaders)

    notes = (conditions(obj), warnings(events))
    labels = tuple(sorted((str(k), str(v)) for k, v in (meta.get("labels") or {}).items()))

    def out(role: Role, state: str, message: str) -> ClusterStatus:
        return ClusterStatus(ref, role, version, state, message, repo_names(obj),
                             connect_hint(ref), fingerprint, *notes, labels=labels)

    paused = condition(obj, "Progressing")
    if paused and paused.get("status") == "False" and paused.get("reason") == "Paused":
        return out(role, "paused", f"PGO is not reconciling it: {paused.get('message', '')}")
    if restoring(obj) or is_false(obj, "PostgresDataInitialized", "PGBackRestRestoreFailed"):
        verdict, message = restore_verdict(obj, events)
        if verdict == "failed":
            return out("unknown", "failed", message)
        if verdict == "running":
            return out("unknown", "restoring", message)
    if spec(obj).get("shutdown") is True:
        if is_shut_down(obj):
            return out("shutdown", "stopped", "Shut down: every instance is scaled to zero.")
        return out("shutdown", "stopping", "Shutting down: PGO is scaling the instances to zero.")
    reasons = not_ready_reasons(obj, leaders)
    if reasons:
        if event := newest_event(events, STANDBY_EVENTS):
            return out("unknown", "failed", f"PGO refused the standby: {event.get('message')}")
        word = "starting" if status(obj).get("startupInstance") else "bootstrapping"
        return out(role, word, "Not ready yet: " + "; ".join(reasons) + ".")
    if standby:
        return out("standby", "standby", "Ready: a standby, replaying from its primary.")
    pending = annotations(obj).get(BACKUP_ANNOTATION, "")
    manual = pgbackrest_status(obj).get("manualBackup") or {}
    note = " A manual backup is running." if pending and not manual.get("finished", True) else ""
    return out("primary", "ready", f"Ready: PostgreSQL {version} is running as the primary.{note}")


__all__ = [
    "BACKUP_ANNOTATION",
    "BOOTSTRAP_ID",
    "RESTORE_ANNOTATION",
    "backups_fingerprint",
    "derive",
    "is_shut_down",
    "not_ready_reasons",
]
