"""Operations on an existing PGO cluster: in-place restore (§3.6), shutdown and start
verified by the workloads PGO labels (§3.8, §8.3), and promotion of a standby (§3.7)."""

from __future__ import annotations

from typing import Any

from ..base import FORMER_PRIMARY, ClusterRef, InPlaceRestoreRequest, JobStatus, PermanentError
from ..manifests import (
    RESTORE_ANNOTATION,
    promote_patch,
    restore_disable_patch,
    restore_in_place_patch,
    shutdown_patch,
)
from ..restore_options import pgo_restore_options
from . import state
from .core import STANDBY_OF_ANNOTATION, KubeCore

RESTORE_ON_STANDBY = "{name} is a standby; promote it or restore its primary instead."
RESTORE_BUSY = (
    "{name} is already being restored (restore id {other}); wait for it to finish, then "
    "start this restore again."
)
RESTORE_ASKED = "Asked PGO to restore {name} in place (annotation {key}={id}); it will go down."
RESTORE_SUPERSEDED = "Another in-place restore ({other}) replaced this request on {name}."
RESTORE_WAITING = "Waiting for PGO to start the in-place restore."
RESTORE_STUCK = (
    "PGO has not started the in-place restore after {seconds:.0f} s. Fix: check that PGO is "
    "running and watches {ns} (its log), and that spec.paused is not set; then restore again."
)
RESTORE_FAILED_FIX = (
    " Fix: read `kubectl -n {ns} logs job/{job}`, then restore again with another point "
    "(PGO keeps the failed Job until an input changes)."
)
RESTORE_DONE = "{name} was restored in place and is ready."
POWER_VERIFIED = {True: "{name} is shut down: every workload PGO runs for it is at zero.",
                  False: "{name} is running and ready."}
PROMOTE_SPLIT_BRAIN = (
    "The old primary {source} is still running: promoting {name} now would let two "
    "primaries write to the same repo (split-brain). Fix: shut {source} down first."
)
PROMOTED = "{name} was promoted: its leader reports role {role}."


class LifecycleMixin(KubeCore):
    # -- in-place restore -----------------------------------------------------------------

    def restore_in_place_advance(self, req: InPlaceRestoreRequest) -> JobStatus:
        """restore.enabled + options + the annotation (= operation id) in ONE patch; follow
        status.pgbackrest.restore (§9); then restore.enabled=false."""
        ref, op = req.cluster, req.operation_id
        options = pgo_restore_options(req.point, now=self.now(), db_include=req.db_include,
                                      process_max=req.process_max)

        def decide(obj: dict[str, Any]) -> dict[str, Any] | None:
            restore = state.pgbackrest_status(obj).get("restore") or {}
            if state.annotations(obj).get(RESTORE_ANNOTATION) == op or restore.get("id") == op:
                return None
            if state.standby_in_spec(obj):
                raise PermanentError(RESTORE_ON_STANDBY.format(name=ref.name))
            if state.restoring(obj):
                raise PermanentError(RESTORE_BUSY.format(name=ref.name,
                                                         other=restore.get("id", "?")))
            patch = restore_in_place_patch(req.repo, options, op)
            patch["metadata"]["annotations"].update(self.stamp("restore", op))
            return patch

        obj, sent = self.patch_fresh(ref, decide)
        if sent:
            return JobStatus("running", RESTORE_ASKED.format(name=ref.name,
                                                             key=RESTORE_ANNOTATION, id=op))
        restore = state.pgbackrest_status(obj).get("restore") or {}
        if restore.get("id") != op:
            pending = state.annotations(obj).get(RESTORE_ANNOTATION, "")
            if pending != op:
                return JobStatus("failed", RESTORE_SUPERSEDED.format(other=pending, name=ref.name))
            if self.is_stuck(obj, "restore", op):
                seconds = self.waited(obj, "restore", op) or 0.0
                return JobStatus("failed", RESTORE_STUCK.format(seconds=seconds,
                                                                ns=ref.namespace))
            return JobStatus("pending", RESTORE_WAITING)
        verdict, message = state.restore_verdict(obj, self.events(ref))
        if verdict == "failed":
            job = state.RESTORE_JOB.format(name=ref.name)
            return JobStatus("failed", message + RESTORE_FAILED_FIX.format(ns=ref.namespace,
                                                                           job=job))
        if verdict != "done" or not state.is_true(obj, "PostgresDataInitialized"):
            return JobStatus("running", message)
        reasons = state.not_ready_reasons(obj, self.leaders(ref))
        if reasons:
            return JobStatus("running", "Restored; starting: " + "; ".join(reasons) + ".")
        self._restore_disable(ref, req.repo)
        return JobStatus("succeeded", RESTORE_DONE.format(name=ref.name), _times(restore))

    def _restore_disable(self, ref: ClusterRef, repo: str) -> None:
        def decide(obj: dict[str, Any]) -> dict[str, Any] | None:
            restore = ((obj["spec"].get("backups") or {}).get("pgbackrest") or {}).get("restore")
            if (restore or {}).get("enabled") is not True and not obj["spec"].get("dataSource"):
                return None
            return restore_disable_patch(repo)

        self.patch_fresh(ref, decide)

    # -- shutdown and start ----------------------------------------------------------------

    def power_advance(self, ref: ClusterRef, *, operation_id: str, shutdown: bool,
                      acknowledge_split_brain: bool = False) -> JobStatus:
        """spec.shutdown, then done only when the workloads say so (§8.3 and PGO's own
        predicate, recorded/README "Contradicts" 8). Starting is refused while a standby the
        console made of this cluster was promoted and runs (split brain), unless
        acknowledged."""

        def decide(obj: dict[str, Any]) -> dict[str, Any] | None:
            if (obj["spec"].get("shutdown") is True) == shutdown:
                return None
            if not shutdown and not acknowledge_split_brain and (
                    promoted := self._writable_successors(ref)):
                raise PermanentError(FORMER_PRIMARY.format(cluster=ref.name,
                                                           promoted=", ".join(promoted)))
            return shutdown_patch(shutdown)

        obj, sent = self.patch_fresh(ref, decide)
        if sent:
            word = "shut down" if shutdown else "start"
            return JobStatus("running", f"Asked PGO to {word} {ref.name}.")
        problems = self._power_problems(ref, obj, shutdown)
        if problems:
            return JobStatus("running", "Not yet: " + "; ".join(problems) + ".")
        result = {}
        if shutdown and not state.status(obj).get("startupInstance"):
            result["note"] = "No primary was recorded: any instance may start first."
        return JobStatus("succeeded", POWER_VERIFIED[shutdown].format(name=ref.name), result)

    def _power_problems(self, ref: ClusterRef, obj: dict[str, Any], down: bool) -> list[str]:
        ns, mine = ref.namespace, f"{state.CLUSTER_LABEL}={ref.name}"
        sets = self.kube.list_workloads(ns, "statefulsets", mine)
        instances = [s for s in sets if state.INSTANCE_LABEL in s["metadata"].get("labels", {})]
        others = [s for s in sets if s not in instances]
        deployments = self.kube.list_workloads(ns, "deployments", mine)
        cronjobs = self.kube.list_workloads(ns, "cronjobs", f"{mine},{state.PFX}pgbackrest-cronjob")
        problems = []
        if down:
            if not state.is_shut_down(obj):
                problems.append("PGO still reports instance pods")
            for item in instances + others + deployments:
                spec_n = item["spec"].get("replicas", 1)
                seen = (item.get("status") or {}).get("replicas") or 0
                if spec_n or seen:
                    problems.append(f"{item['metadata']['name']} has {seen} pod(s)")
            if pods := self.kube.list_pods(ns, f"{mine},{state.INSTANCE_LABEL}"):
                problems.append(f"{len(pods)} instance pod(s) still exist")
            problems += [f"CronJob {c['metadata']['name']} is not suspended"
                         for c in cronjobs if not c["spec"].get("suspend")]
            jobs = self.kube.list_workloads(ns, "jobs", f"{mine},{state.PFX}pgbackrest-backup")
            running = [j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("active")]
            if running and not problems:
                problems.append(f"backup Job(s) {', '.join(running)} still running")
            return problems
        leaders = self.kube.list_pods(ns, f"{mine},{state.LEADER_SELECTOR}")
        problems = state.not_ready_reasons(obj, leaders)
        for item in instances:
            if not item["spec"].get("replicas"):
                problems.append(f"{item['metadata']['name']} is still scaled to zero")
        if not state.standby_in_spec(obj):
            problems += [f"CronJob {c['metadata']['name']} is still suspended"
                         for c in cronjobs if c["spec"].get("suspend")]
        return problems

    # -- promotion --------------------------------------------------------------------------

    def promote_advance(self, ref: ClusterRef, *, operation_id: str) -> JobStatus:
        """standby.enabled=false; done when the leader's Patroni role is master/primary (§9).
        Refused while the primary the console made it from still runs (§3.7, pain point 11)."""

        def decide(obj: dict[str, Any]) -> dict[str, Any] | None:
            if not state.standby_in_spec(obj):
                return None
            if source := self._running_source(obj):
                raise PermanentError(PROMOTE_SPLIT_BRAIN.format(source=source, name=ref.name))
            return promote_patch()

        _, sent = self.patch_fresh(ref, decide)
        if sent:
            return JobStatus("running", f"Asked PGO to promote {ref.name}.")
        roles = [state.patroni_role(p) for p in self.leaders(ref)]
        writable = [r for r in roles if r in ("master", "primary")]
        if len(writable) == 1 and len(roles) == 1:
            return JobStatus("succeeded", PROMOTED.format(name=ref.name, role=writable[0]))
        shown = ", ".join(r or "none" for r in roles) or "no leader pod"
        return JobStatus("running", f"Waiting for Patroni to promote the leader ({shown}).")

    def _writable_successors(self, ref: ClusterRef) -> list[str]:
        """PostgresClusters made as standbys of `ref` (the console's standby-of annotation)
        that were promoted (no spec.standby.enabled) and are not shut down: one list call per
        managed namespace, made only when a cluster is started."""
        origin = f"{ref.namespace}/{ref.name}"
        found = []
        for namespace in self.namespaces:
            items, _ = self.kube.list_clusters(namespace)
            found += [f"{namespace}/{o['metadata']['name']}" for o in items
                      if state.annotations(o).get(STANDBY_OF_ANNOTATION) == origin
                      and not state.standby_in_spec(o) and not state.is_shut_down(o)]
        return found

    def _running_source(self, obj: dict[str, Any]) -> str:
        """The primary this standby was made from, if it is known and not shut down."""
        origin = state.annotations(obj).get(STANDBY_OF_ANNOTATION, "")
        namespace, _, name = origin.partition("/")
        if not name or namespace not in self.namespaces:
            return ""
        source = self.kube.get_cluster(namespace, name)
        if source is None or state.is_shut_down(source):
            return ""
        return origin


def _times(restore: dict[str, Any]) -> dict[str, str]:
    started = state.timestamp(restore.get("startTime"))
    done = state.timestamp(restore.get("completionTime"))
    if not (started and done):
        return {}
    return {"restore_seconds": str(round((done - started).total_seconds(), 1))}
