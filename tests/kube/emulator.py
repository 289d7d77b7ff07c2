"""A small PGO v5 emulator for the test API server: it reacts to PostgresCluster spec and
annotations as shared/pgo/PGO-REFERENCE.md describes and shared/pgo/recorded/ shows.

Instant reactions run in the server's on_change hook (before the writer's response is sent);
anything that takes time (Jobs finishing, pods becoming ready or going away, a restore's
teardown, Patroni promoting) happens on `tick()`; `settle()` ticks until nothing changes.

Knobs: `fail_restore` / `fail_backup` (cluster names whose Job fails), `stuck` (names whose
backup/restore annotations PGO never consumes), `deferred` (names reconciled only on tick),
`hold_jobs` (Jobs keep running), `in_recovery` (names whose psql reports recovery). `exec`
answers `pgbackrest info` (and `--set`, `repo-ls`) from the backups it "took", shaped like
the recorded sample, and a drill's `psql` checks (restores.platforms.verify_sql). Not
emulated: PVCs, Services, Endpoints, users, TLS, switchover, scheduled backup runs, backup
removal, v4 migration, finalizers.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import os
import random
import shlex
import subprocess
import threading
from typing import Any

from tests.kube.apiserver import ApiError, KubeServer, sample_path

PFX = "postgres-operator.crunchydata.com/"
CLUSTER, ROLE, INSTANCE, SET = (PFX + k for k in ("cluster", "role", "instance", "instance-set"))
BACKUP_ANN, RESTORE_ANN = PFX + "pgbackrest-backup", PFX + "pgbackrest-restore"
FORBIDDEN = ("--repo=", "--repo ", "--stanza", "--pg1-path", "--target-action", "--link-map")
PAUSED = "No spec changes will be applied and no other statuses will be updated."


def _suffix(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:4]  # noqa: S324


class PgoEmulator:
    def __init__(self, server: KubeServer) -> None:
        self.server, self.store = server, server.store
        self.fail_restore: set[str] = set()
        self.fail_backup: set[str] = set()
        self.stuck: set[str] = set()
        self.deferred: set[str] = set()
        self.hold_jobs = False
        self.in_recovery: set[str] = set()  # clusters whose psql says pg_is_in_recovery()
        self.backups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.system_ids: dict[tuple[str, str], int] = {}
        self.trigger_values: list[tuple[str, str, str]] = []  # (cluster, key, value) as set
        # A drill's own SQL checks: any other statement psql is given runs in this real
        # PostgreSQL database (its PGOPTIONS, read-only and the timeout, applied), as it would
        # in the scratch copy; None: refused. pg_amcheck answers `amcheck_findings` per
        # cluster (none: a clean exit). Every exec: (pod, argv) in `execs`.
        self.sql_dsn: str | None = None
        self.amcheck_findings: dict[str, str] = {}
        self.execs: list[tuple[str, list[str]]] = []
        self._lock = threading.RLock()
        self._local = threading.local()
        self._wal = itertools.count(0x100)
        server.on_change.append(self._hook)
        server.exec_handler = self.exec

    def detach(self) -> None:
        """Stop reacting (PGO is gone); the objects stay as they are."""
        self.server.on_change.remove(self._hook)

    # -- plumbing --------------------------------------------------------------------------

    def _hook(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if obj.get("kind") != "PostgresCluster":
            return
        meta, before = obj["metadata"], (old or {}).get("metadata", {}).get("annotations") or {}
        for key in (BACKUP_ANN, RESTORE_ANN):
            value = (meta.get("annotations") or {}).get(key)
            if kind != "DELETED" and value and value != before.get(key):
                self.trigger_values.append((meta["name"], key, value))
        if meta["name"] not in self.deferred:
            self._run((meta.get("namespace", "default"), meta["name"]))

    def _run(self, key: tuple[str, str]) -> None:
        if getattr(self._local, "queue", None) is not None:  # a write of ours: later
            if key not in self._local.queue:
                self._local.queue.append(key)
            return
        self._local.queue = [key]
        try:
            with self._lock:
                for _ in range(50):
                    if not self._local.queue:
                        break
                    self.reconcile(*self._local.queue.pop(0))
        finally:
            self._local.queue = None

    def tick(self) -> None:
        """Let time pass: Jobs finish, pods start or stop, teardowns end, leaders promote."""
        with self._lock:
            self._local.queue = []
            try:
                self._tick()
            finally:
                self._local.queue = None
            for pc in self.store.list("postgresclusters"):
                self._run((pc["metadata"]["namespace"], pc["metadata"]["name"]))

    def settle(self, ticks: int = 20) -> None:
        for _ in range(ticks):
            before = self.store.rv
            self.tick()
            if self.store.rv == before:
                return

    def _tick(self) -> None:
        now = self.store.now()
        for job in self.store.list("jobs"):
            st = job.get("status") or {}
            if not st.get("active") or self.hold_jobs:
                continue
            labels, name = job["metadata"]["labels"], job["metadata"]["labels"][CLUSTER]
            failing = name in (self.fail_restore if PFX + "pgbackrest-restore" in labels
                               else self.fail_backup if labels.get(BACKUP_ANN) == "manual"
                               else ())
            done = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]} if failing \
                else {"succeeded": 1, "completionTime": now,
                      "conditions": [{"type": "Complete", "status": "True"}]}
            self.store.patch("jobs", job["metadata"]["namespace"], job["metadata"]["name"],
                             {"status": {"active": None, **done}})
        for pod in self.store.list("pods", label_selector=INSTANCE):
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            sts = self.store.get("statefulsets", ns, pod["metadata"]["labels"][INSTANCE])
            if sts is None or not sts["spec"]["replicas"]:
                self.store.delete("pods", ns, name, force=True)
            elif not _ready(pod):
                ready = [{"name": c["name"], "ready": True, "image": c["image"], "imageID": "",
                          "restartCount": 0} for c in pod["spec"]["containers"]]
                self.store.patch("pods", ns, name, {"status": {"containerStatuses": ready,
                    "conditions": [{"type": "Ready", "status": "True"}]}})
        for pc in self.store.list("postgresclusters"):
            ns, name, st = pc["metadata"]["namespace"], pc["metadata"]["name"], pc.get("status")
            cond = _cond(pc, "PGBackRestoreProgressing")
            if cond and cond["reason"] == "RestoreInPlaceRequested":
                st = copy.deepcopy(st)
                _set_cond(st, "PGBackRestoreProgressing", "True", "ReadyForRestore",
                          "Restoring cluster in-place")
                st.setdefault("patroni", {}).pop("systemIdentifier", None)
                self.store.update({**pc, "status": st})
            for pod in self._pods(ns, name):  # Patroni promotes once the config says so
                if _role(pod) == "standby_leader" and not _standby(pc):
                    self._set_role(pod, "primary")

    # -- the reconcile ---------------------------------------------------------------------

    def reconcile(self, ns: str, name: str) -> None:
        pc = self.store.get("postgresclusters", ns, name)
        if pc is None or pc["metadata"].get("deletionTimestamp"):
            for res in ("jobs", "cronjobs", "deployments", "pods", "statefulsets"):
                for obj in self.store.list(res, ns, label_selector=f"{CLUSTER}={name}"):
                    self.store.delete(res, ns, obj["metadata"]["name"], force=True)
            return
        spec, st = pc["spec"], copy.deepcopy(pc.get("status") or {})
        if spec.get("paused"):
            st["conditions"] = [{"type": "Progressing", "status": "False", "reason": "Paused",
                                 "message": PAUSED}]
            return self._save(pc, st)
        if _standby(pc) and not (spec["standby"].get("host") or spec["standby"].get("repoName")):
            return self._event(pc, "InvalidStandbyConfiguration", "Standby is enabled but no "
                               "source (host or repoName) is defined")
        if not self._restore(pc, st):
            return self._save(pc, st)
        self._instances(pc, st)
        self._pgbackrest(pc, st)
        st["observedGeneration"] = pc["metadata"]["generation"]
        st["postgresVersion"] = spec["postgresVersion"]
        self._save(pc, st)

    def _save(self, pc: dict[str, Any], st: dict[str, Any]) -> None:
        if st != (pc.get("status") or {}):
            new = {**pc, "status": st}
            try:
                self.store.update(new)
            except ApiError as exc:  # someone wrote meanwhile: look again
                if exc.code != 409:
                    raise
                self._run((pc["metadata"]["namespace"], pc["metadata"]["name"]))

    def _event(self, pc: dict[str, Any], reason: str, message: str) -> None:
        ns, name = pc["metadata"]["namespace"], pc["metadata"]["name"]
        for event in self.store.list("events", ns):
            if (event["involvedObject"].get("name"), event["reason"],
                    event["message"]) == (name, reason, message):
                return
        self.store.record_event(pc, reason, message, type="Warning")

    # -- restores (§3.3-3.6) ---------------------------------------------------------------

    def _restore(self, pc: dict[str, Any], st: dict[str, Any]) -> bool:
        """Drive a data-source or in-place restore; True when the normal reconcile may run."""
        ns, name, spec = pc["metadata"]["namespace"], pc["metadata"]["name"], pc["spec"]
        pgbr = (spec.get("backups") or {}).get("pgbackrest") or {}
        ann = (pc["metadata"].get("annotations") or {}).get(RESTORE_ANN, "")
        inplace = bool(ann) and (pgbr.get("restore") or {}).get("enabled") is True \
            and name not in self.stuck
        source = spec.get("dataSource") or {}
        rid = ann if inplace else (f"~pgo-bootstrap-{name}" if source.get("postgresCluster")
                                   or source.get("pgbackrest") else None)
        restore = (st.get("pgbackrest") or {}).get("restore") or {}
        if rid and rid != restore.get("id"):  # prepareForRestore
            leader = next((p for p in self._pods(ns, name) if _role(p) != "replica"), None)
            st["startupInstance"] = (leader["metadata"]["labels"][INSTANCE] if leader
                                     else f"{name}-{_set_names(pc)[0]}-{_suffix(name, '0')}")
            for sts in self.store.list("statefulsets", ns, f"{CLUSTER}={name},{INSTANCE}"):
                self.store.delete("statefulsets", ns, sts["metadata"]["name"], force=True)
            for pod in self._pods(ns, name):
                self.store.delete("pods", ns, pod["metadata"]["name"], force=True)
            if job := self.store.get("jobs", ns, f"{name}-pgbackrest-restore"):
                self.store.delete("jobs", ns, job["metadata"]["name"], force=True)
            st["pgbackrest"] = {"restore": {"id": rid, "finished": False}}
            st["instances"] = [{"name": s, "replicas": 0} for s in _set_names(pc)]
            _drop_cond(st, "PostgresDataInitialized")
            reason, message = (("RestoreInPlaceRequested", "Preparing cluster to restore "
                                "in-place: removing runners") if inplace
                               else ("ReadyForRestore", "Restoring cluster in-place"))
            _set_cond(st, "PGBackRestoreProgressing", "True", reason, message)
            return False
        if not restore or (restore.get("finished") and not restore.get("failed")):
            return True
        if restore.get("finished"):
            return False  # a failed restore waits for a changed input (H6)
        if _cond_of(st, "PGBackRestoreProgressing", "reason") == "RestoreInPlaceRequested":
            return False  # tearing down: tick() moves on
        job = self.store.get("jobs", ns, f"{name}-pgbackrest-restore")
        if job is None:
            problem = self._data_source_problem(pc, inplace)
            if problem:
                self._event(pc, "InvalidDataSource", problem)
                return False
            job = self._job(pc, f"{name}-pgbackrest-restore",
                            {PFX + "pgbackrest-restore": "",
                             PFX + "startup-instance": st.get("startupInstance", "")}, {})
            restore.update(startTime=job["status"]["startTime"], active=1)
            return False
        js = job.get("status") or {}
        if js.get("failed"):
            restore.update(finished=True, failed=js["failed"], active=None)
            restore.pop("active")
            _set_cond(st, "PostgresDataInitialized", "False", "PGBackRestRestoreFailed",
                      "restore job failed")
            return False
        if not js.get("succeeded"):
            return False
        restore.update(finished=True, succeeded=1, completionTime=js.get("completionTime"))
        restore.pop("active", None)
        _set_cond(st, "PostgresDataInitialized", "True", "PGBackRestRestoreComplete",
                  "pgBackRest restore completed successfully")
        _drop_cond(st, "PGBackRestoreProgressing")
        src = source.get("postgresCluster") or {}
        origin = (src.get("clusterNamespace") or ns, src.get("clusterName") or name)
        self.system_ids.setdefault((ns, name), self.system_ids.get(origin) or _new_id())
        self.backups[(ns, name)] = [] if not inplace else self.backups.get((ns, name), [])
        st["pgbackrest"]["repos"] = []
        return True

    def _data_source_problem(self, pc: dict[str, Any], inplace: bool) -> str:
        spec, ns = pc["spec"], pc["metadata"]["namespace"]
        pgbr = (spec.get("backups") or {}).get("pgbackrest") or {}
        source = pgbr.get("restore") if inplace else (spec.get("dataSource") or {})
        live = source if inplace else source.get("postgresCluster")
        options = (live or source.get("pgbackrest") or {}).get("options") or ()
        for option in options:
            if bad := next((f for f in FORBIDDEN if f in option), None):
                return f"Option '{bad.strip()}' is not allowed: use the spec field instead"
        if live and live.get("clusterName"):
            src_ns = live.get("clusterNamespace") or ns
            src = self.store.get("postgresclusters", src_ns, live["clusterName"])
            if src is None:
                return f'PostgresCluster "{live["clusterName"]}" does not exist'
            repos = ((src["spec"].get("backups") or {}).get("pgbackrest") or {}).get("repos")
            if live["repoName"] not in [r["name"] for r in repos or ()]:
                return (f'PostgresCluster "{live["clusterName"]}" does not have a repo named '
                        f'"{live["repoName"]}" defined')
        return ""

    # -- instances, Patroni, workloads (§3.7, §3.8, §8) ------------------------------------

    def _pods(self, ns: str, name: str) -> list[dict[str, Any]]:
        return self.store.list("pods", ns, label_selector=f"{CLUSTER}={name},{INSTANCE}")

    def _set_role(self, pod: dict[str, Any], role: str) -> None:
        label = "master" if role in ("primary", "standby_leader") else "replica"
        self.store.patch("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], {
            "metadata": {"labels": {ROLE: label}, "annotations": {"status": json.dumps(
                {"role": role, "state": "running", "timeline": 1})}}})

    def _workload(self, res: str, pc: dict[str, Any], name: str, labels: dict[str, str],
                  spec: dict[str, Any]) -> None:
        ns = pc["metadata"]["namespace"]
        obj = self.store.get(res, ns, name)
        labels = {CLUSTER: pc["metadata"]["name"], **labels}
        if obj is None:
            kind = {"statefulsets": "StatefulSet", "deployments": "Deployment",
                    "cronjobs": "CronJob"}[res]
            group = "batch/v1" if res == "cronjobs" else "apps/v1"
            template = {"metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "x", "image": "crunchy-postgres"}]}}
            body = {"selector": {"matchLabels": labels}, "template": template} \
                if res != "cronjobs" else {"schedule": "0 1 * * *", "jobTemplate": {}}
            self.store.create({"apiVersion": group, "kind": kind, "metadata": {
                "name": name, "namespace": ns, "labels": labels}, "spec": {**body, **spec}})
        elif any(obj["spec"].get(k) != v for k, v in spec.items()):
            self.store.patch(res, ns, name, {"spec": spec})

    def _instances(self, pc: dict[str, Any], st: dict[str, Any]) -> None:
        ns, name, spec = pc["metadata"]["namespace"], pc["metadata"]["name"], pc["spec"]
        down, standby = spec.get("shutdown") is True, _standby(pc)
        pods = self._pods(ns, name)
        if down and pods and not st.get("startupInstance"):
            leader = next((p for p in pods if _role(p) != "replica"), pods[0])
            st["startupInstance"] = leader["metadata"]["labels"][INSTANCE]
        instances = []
        names = ["database", "replication-cert-copy"] + (
            ["pgbackrest", "pgbackrest-config"] if spec.get("backups") else [])
        containers = [{"name": c, "image": "crunchy-postgres:ubi9-16"} for c in names]
        for index, item in enumerate(spec["instances"]):
            set_name = item.get("name") or f"{index:02d}"
            for n in range(item.get("replicas", 1)):
                sts = f"{name}-{set_name}-{_suffix(name, str(n))}"
                labels = {SET: set_name, INSTANCE: sts, PFX + "data": "postgres"}
                self._workload("statefulsets", pc, sts, labels, {"replicas": 0 if down else 1})
                if not down and self.store.get("pods", ns, f"{sts}-0") is None:
                    self.store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                        "name": f"{sts}-0", "namespace": ns, "labels": {CLUSTER: name,
                                                                         **labels}},
                        "spec": {"containers": containers},
                        "status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "False"}]}})
            mine = [p for p in self._pods(ns, name) if p["metadata"]["labels"][SET] == set_name]
            ready = sum(_ready(p) for p in mine)
            instances.append({"name": set_name, "replicas": len(mine), "readyReplicas": ready,
                              "updatedReplicas": len(mine)})
        st["instances"] = instances
        pods = [p for p in self._pods(ns, name) if _ready(p)]
        want = "standby_leader" if standby else "primary"
        leader = next((p for p in pods if _role(p) in ("primary", "standby_leader")), None)
        if leader is None and pods:
            first = [p for p in pods if p["metadata"]["labels"][INSTANCE]
                     == st.get("startupInstance")] or pods
            leader = first[0]
            self._set_role(leader, want)
        for pod in pods:
            if pod is not leader and _role(pod) != "replica":
                self._set_role(pod, "replica")
        if leader is not None:
            self.system_ids.setdefault((ns, name), _new_id())
            st.setdefault("patroni", {})["systemIdentifier"] = str(self.system_ids[(ns, name)])
            if not down:
                st.pop("startupInstance", None)
                st.pop("startupInstanceSet", None)
        if proxy := (spec.get("proxy") or {}).get("pgBouncer"):
            self._workload("deployments", pc, f"{name}-pgbouncer", {ROLE: "pgbouncer"},
                           {"replicas": 0 if down else proxy.get("replicas", 1)})

    def _pgbackrest(self, pc: dict[str, Any], st: dict[str, Any]) -> None:
        ns, name, spec = pc["metadata"]["namespace"], pc["metadata"]["name"], pc["spec"]
        pgbr = (spec.get("backups") or {}).get("pgbackrest")
        if not pgbr:
            st["pgbackrest"] = {}
            return
        down, standby = spec.get("shutdown") is True, _standby(pc)
        status = st.setdefault("pgbackrest", {})
        if any("volume" in r for r in pgbr["repos"]):
            pods_left = bool(self._pods(ns, name))
            self._workload("statefulsets", pc, f"{name}-repo-host",
                           {PFX + "pgbackrest": "", PFX + "pgbackrest-dedicated": ""},
                           {"replicas": 0 if down and not pods_left else 1})
            status["repoHost"] = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                  "ready": not down}
        writable = any(_role(p) == "primary" and _ready(p) for p in self._pods(ns, name))
        old = {r["name"]: r for r in status.get("repos") or ()}
        repos = []
        for index, repo in enumerate(pgbr["repos"]):
            entry = {"name": repo["name"], **({"bound": True} if "volume" in repo
                                              else {"repoOptionsHash": "h"})}
            if writable or old.get(repo["name"], {}).get("stanzaCreated"):
                entry["stanzaCreated"] = True
            if index == 0 and old.get(repo["name"], {}).get("replicaCreateBackupComplete"):
                entry["replicaCreateBackupComplete"] = True
            repos.append(entry)
        status["repos"] = repos
        if not repos[0].get("stanzaCreated"):
            return
        _set_cond(st, "PGBackRestReplicaRepoReady", "True", "StanzaCreated", "")
        if not repos[0].get("replicaCreateBackupComplete"):
            _set_cond(st, "PGBackRestReplicaCreate", "False", "RepoBackupNotComplete", "")
            job = self._job_labelled(ns, name, "replica-create")
            if job is None and writable:
                self._job(pc, f"{name}-backup-{_suffix(name, 'rc')}",
                          {BACKUP_ANN: "replica-create", PFX + "pgbackrest-repo": repos[0]["name"]},
                          {})
            elif job is not None and (job.get("status") or {}).get("succeeded"):
                repos[0]["replicaCreateBackupComplete"] = True
                self._take_backup(ns, name, repos[0]["name"], ["--type=full"], job)
        if repos[0].get("replicaCreateBackupComplete"):
            _set_cond(st, "PGBackRestReplicaCreate", "True", "RepoBackupComplete", "")
            for repo in pgbr["repos"]:
                for kind, short in (("full", "full"), ("differential", "diff"),
                                    ("incremental", "incr")):
                    if (repo.get("schedules") or {}).get(kind):
                        self._workload("cronjobs", pc, f"{name}-{repo['name']}-{short}",
                                       {PFX + "pgbackrest-cronjob": short, BACKUP_ANN: "scheduled",
                                        PFX + "pgbackrest-repo": repo["name"]},
                                       {"suspend": down or standby})
        self._manual(pc, st, writable)

    def _manual(self, pc: dict[str, Any], st: dict[str, Any], writable: bool) -> None:
        """§3.1: a new annotation value + spec.manual + all gates → one Job; then mirror it."""
        ns, name = pc["metadata"]["namespace"], pc["metadata"]["name"]
        manual = pc["spec"]["backups"]["pgbackrest"].get("manual")
        status = st["pgbackrest"]
        ann = (pc["metadata"].get("annotations") or {}).get(BACKUP_ANN, "")
        current = status.get("manualBackup") or {}
        if ann and manual and ann != current.get("id") and name not in self.stuck and writable:
            repo = next((r for r in status["repos"] if r["name"] == manual["repoName"]), None)
            if repo is None:
                return self._event(pc, "InvalidBackupRepo", f"repo {manual['repoName']} has no "
                                   "status")
            if any("--repo" in o for o in manual.get("options") or ()):
                return self._event(pc, "InvalidManualBackup", "Invalid manual backup: "
                                   "--repo is not allowed")
            running = self._job_labelled(ns, name, "manual")
            if running is not None and (running.get("status") or {}).get("active"):
                return  # a running Job is never interrupted (§3.1)
            if running is not None:
                self.store.delete("jobs", ns, running["metadata"]["name"], force=True)
            self._job(pc, f"{name}-backup-{_suffix(name, ann)}",
                      {BACKUP_ANN: "manual", PFX + "pgbackrest-repo": manual["repoName"]},
                      {BACKUP_ANN: ann})
            current = status["manualBackup"] = {"id": ann, "finished": False}
            _drop_cond(st, "PGBackRestManualBackupSuccessful")
        job = self._job_labelled(ns, name, "manual")
        if not current or current.get("finished") or job is None:
            return
        if job["metadata"]["annotations"].get(BACKUP_ANN) != current["id"]:
            return
        js = job.get("status") or {}
        current.update(startTime=js.get("startTime"), active=js.get("active"))
        ok = bool(js.get("succeeded"))
        if ok or js.get("failed"):
            current.update(finished=True, succeeded=js.get("succeeded"), failed=js.get("failed"),
                           completionTime=js.get("completionTime"), active=None)
        for key in [k for k, v in current.items() if v is None]:
            current.pop(key)
        if current["finished"]:
            _set_cond(st, "PGBackRestManualBackupSuccessful", "True" if ok else "False",
                      "ManualBackupComplete" if ok else "ManualBackupFailed", "")
            if ok:
                self._take_backup(ns, name, manual["repoName"], manual.get("options") or [], job)

    def _job_labelled(self, ns: str, name: str, kind: str) -> dict[str, Any] | None:
        jobs = self.store.list("jobs", ns, label_selector=f"{CLUSTER}={name},{BACKUP_ANN}={kind}")
        return jobs[-1] if jobs else None

    def _job(self, pc: dict[str, Any], job: str, labels: dict[str, str],
             annotations: dict[str, str]) -> dict[str, Any]:
        ns = pc["metadata"]["namespace"]
        return self.store.create({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job, "namespace": ns, "annotations": annotations, "labels": {
                CLUSTER: pc["metadata"]["name"], PFX + "pgbackrest": "", **labels}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "pgbackrest", "image": "crunchy-pgbackrest"}]}}},
            "status": {"active": 1, "startTime": self.store.now()}})

    # -- pgBackRest's view (exec) ----------------------------------------------------------

    def _take_backup(self, ns: str, name: str, repo: str, options: list[str],
                     job: dict[str, Any]) -> None:
        kind = next((o.split("=", 1)[1] for o in options if o.startswith("--type=")), "incr")
        notes = dict(o.split("=", 1)[1].split("=", 1) for o in options
                     if o.startswith("--annotation="))
        sets = self.backups.setdefault((ns, name), [])
        stop = max([int(dt.datetime.now(dt.UTC).timestamp())]
                   + [b["timestamp"]["stop"] + 1 for b in sets])
        stamp = dt.datetime.fromtimestamp(stop - 1, dt.UTC).strftime("%Y%m%d-%H%M%S")
        fulls = [b for b in sets if b["type"] == "full" and b["repo"] == repo]
        kind = "full" if not fulls else kind
        label = f"{stamp}F" if kind == "full" else f"{fulls[-1]['label']}_{stamp}{kind[0].upper()}"
        wal = f"00000001{0:08X}{next(self._wal):08X}"
        sets.append({"label": label, "type": kind, "repo": repo, "annotation": notes or None,
                     "timestamp": {"start": stop - 1, "stop": stop}, "wal": wal,
                     "prior": None if kind == "full" else fulls[-1]["label"]})

    def info(self, ns: str, name: str, words: list[str]) -> list[dict[str, Any]]:
        """`pgbackrest info --output=json` of cluster ns/name, shaped like the sample."""
        opts = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
        base = json.loads(sample_path().read_text())[0]
        pc = self.store.get("postgresclusters", ns, name) or {"spec": {}}
        repos = [r["name"] for r in ((pc["spec"].get("backups") or {}).get("pgbackrest")
                                     or {}).get("repos") or ()]
        keys = [int(r[4:]) for r in repos if "repo" not in opts or r[4:] == opts["repo"]]
        sets = [b for b in self.backups.get((ns, name), []) if int(b["repo"][4:]) in keys]
        if "set" in opts:
            sets = [b for b in sets if b["label"] == opts["set"]]
        template = base["backup"][0]
        backups = [{**copy.deepcopy(template), "label": b["label"], "type": b["type"],
                    "annotation": b["annotation"], "prior": b["prior"],
                    "reference": [b["prior"]] if b["prior"] else None,
                    "timestamp": b["timestamp"], "archive": {"start": b["wal"], "stop": b["wal"]},
                    "database": {"id": 1, "repo-key": int(b["repo"][4:])},
                    **({"database-ref": [{"name": "app", "oid": 16384}, {"name": "other",
                       "oid": 16385}, {"name": "postgres", "oid": 5}]} if "set" in opts else {})}
                   for b in sets]
        archive = [{"database": {"id": 1, "repo-key": k}, "id": "16-1",
                    "min": min(b["wal"] for b in sets if int(b["repo"][4:]) == k),
                    "max": max(b["wal"] for b in sets if int(b["repo"][4:]) == k)}
                   for k in keys if any(int(b["repo"][4:]) == k for b in sets)]
        return [{**base, "name": "db", "backup": backups, "archive": archive,
                 "db": [{"id": 1, "repo-key": k, "system-id": self.system_ids.get(
                     (ns, name), 1), "version": "16"} for k in keys],
                 "repo": [{"cipher": "none", "key": k, "status": {"code": 0, "message": "ok"}
                           if any(int(b["repo"][4:]) == k for b in sets) else
                           {"code": 2, "message": "no valid backups"}} for k in keys]}]

    def psql(self, ns: str, cluster: str, words: list[str],
             env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """`psql -X -A -t -F <tab> -d <db> -c <sql>` for a drill's verify_sql queries: a
        primary (or in recovery, for names in `in_recovery`) with the system identifier of
        the cluster it was restored from, databases app and postgres."""
        from restores.platforms import verify_sql

        env = env or {}
        sql, db = words[words.index("-c") + 1], words[words.index("-d") + 1]
        if sql == verify_sql.SERVER:
            replayed = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime(
                "%Y-%m-%d %H:%M:%S.%f+00")
            recovering = "t" if cluster in self.in_recovery else "f"
            return 0, (f"16.4 (Debian 16.4-1)\t{recovering}\t"
                       f"{self.system_ids.get((ns, cluster), 1)}\t{replayed}\n"), ""
        if sql == verify_sql.DATABASES:
            return 0, "app\t8123456\npostgres\t7654321\n", ""
        if sql == verify_sql.USER_TABLES:
            return 0, {"app": "3\n"}.get(db, "0\n"), ""
        if self.sql_dsn is None:
            return 1, "", "ERROR:  the PGO emulator answers only the drill's queries\n"
        real = list(words)
        real[words.index("-d") + 1] = self.sql_dsn
        done = subprocess.run(real, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
        return done.returncode, done.stdout, done.stderr

    def pg_amcheck(self, cluster: str) -> tuple[int, str, str]:
        findings = self.amcheck_findings.get(cluster, "")
        return (2, findings, "") if findings else (0, "", "")

    def exec(self, ns: str, pod: str, container: str, command: list[str]) -> tuple[int, str, str]:
        obj = self.store.get("pods", ns, pod)
        words = shlex.split(command[-1]) if command[:1] in (["bash"], ["sh"]) else command
        self.execs.append((pod, list(words)))
        env: dict[str, str] = {}
        if words[:1] == ["env"]:  # env NAME=value ... command
            words = words[1:]
            while words and "=" in words[0]:
                name, _, value = words.pop(0).partition("=")
                env[name] = value
        if obj is not None and container == "database" and words[:1] == ["psql"]:
            return self.psql(ns, obj["metadata"]["labels"].get(CLUSTER, ""), words, env)
        if obj is not None and container == "database" and words[:1] == ["pg_amcheck"]:
            return self.pg_amcheck(obj["metadata"]["labels"].get(CLUSTER, ""))
        if obj is None or container != "database" or words[:1] != ["pgbackrest"]:
            return 1, "", f"{words[0] if words else ''}: not answered by the PGO emulator\n"
        cluster = obj["metadata"]["labels"].get(CLUSTER, "")
        if "info" in words:
            return 0, json.dumps(self.info(ns, cluster, words)), ""
        if "repo-ls" in words:
            sets = self.backups.get((ns, cluster), [])
            newest = max((b["timestamp"]["stop"] for b in sets), default=0) + 30
            listing = {f"{b['wal']}-0123abcd.gz": {"type": "file", "time": newest} for b in sets}
            return 0, json.dumps(listing), ""
        return 1, "", "ERROR: [031]: the PGO emulator knows only info and repo-ls\n"


def _new_id() -> int:
    return random.randrange(7 * 10**18, 8 * 10**18)


def _standby(pc: dict[str, Any]) -> bool:
    sb = pc["spec"].get("standby")
    return isinstance(sb, dict) and sb.get("enabled", True) is not False


def _set_names(pc: dict[str, Any]) -> list[str]:
    return [i.get("name") or f"{n:02d}" for n, i in enumerate(pc["spec"]["instances"])]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _role(pod: dict[str, Any]) -> str:
    raw = (pod["metadata"].get("annotations") or {}).get("status")
    return json.loads(raw)["role"] if raw else ""


def _cond(pc: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conds = (pc.get("status") or {}).get("conditions") or ()
    return next((c for c in conds if c["type"] == kind), None)


def _cond_of(st: dict[str, Any], kind: str, field: str) -> str:
    return next((c[field] for c in st.get("conditions") or () if c["type"] == kind), "")


def _set_cond(st: dict[str, Any], kind: str, status: str, reason: str, message: str) -> None:
    conds = [c for c in st.get("conditions") or () if c["type"] != kind]
    old = next((c for c in st.get("conditions") or () if c["type"] == kind), None)
    if old and (old["status"], old["reason"], old["message"]) == (status, reason, message):
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conds.append({"type": kind, "status": status, "reason": reason, "message": message,
                  "lastTransitionTime": stamp})
    st["conditions"] = sorted(conds, key=lambda c: c["type"])


def _drop_cond(st: dict[str, Any], kind: str) -> None:
    if any(c["type"] == kind for c in st.get("conditions") or ()):
        st["conditions"] = [c for c in st["conditions"] if c["type"] != kind]


def drive(step: Any, emulator: PgoEmulator, limit: int = 40) -> Any:
    """Call `step()` (a platform *_advance or status call) until it reports succeeded or
    failed, letting time pass (`tick`) between calls; the last JobStatus."""
    for _ in range(limit):
        result = step()
        if result.state in ("succeeded", "failed"):
            return result
        emulator.tick()
    return result
