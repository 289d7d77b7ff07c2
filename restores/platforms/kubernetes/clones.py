"""New clusters from backups: clone / PITR (§3.3-3.5) and standbys (§3.7).

The new PostgresCluster is named after the target and carries `dr-console/operation=<id>`:
a retried create finds its own object and carries on; an object of that name without the
mark is someone else's, and the operation fails instead of touching it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..base import ClonePlan, CloneRequest, ClusterRef, JobStatus, PermanentError, StandbyRequest
from ..manifests import (
    GCS,
    S3,
    Azure,
    CloneSource,
    ClusterSpec,
    LiveSource,
    RepoSpec,
    RestoreJob,
    Toleration,
    clone_manifest,
    data_source_clear_patch,
    standby_manifest,
)
from ..restore_options import pgo_restore_options
from . import state
from .api import Conflict
from .core import OPERATION_ANNOTATION, STANDBY_OF_ANNOTATION, KubeCore

FOREIGN = (
    "A PostgresCluster named {name} already exists in {namespace} and was not created by "
    "this operation; nothing was changed. Pick another name."
)
SOURCE_MISSING = 'PostgresCluster "{name}" does not exist in {namespace}.'
SOURCE_NO_REPO = 'PostgresCluster "{name}" does not have a repo named "{repo}" defined.'
NEEDS_VERSION = "A clone from a cloud repo needs the PostgreSQL major version (postgres_version)."
REFUSED = "The API server refuses the manifest: {errors}"
RESTORE_FIX = (
    " Fix: read the restore pod's log (kubectl -n {ns} logs job/{job}), correct the point or "
    "the source, delete the half-made cluster {name}, and clone again."
)
CLOUD_RESTORE_FIX = (
    " Fix: read the restore pod's log (kubectl -n {ns} logs job/{job}). PGO does not check a "
    "cloud repo beforehand: a wrong bucket, path or stanza, or credentials that do not open "
    "the repo{secret}, fail there. Correct the source or the point, delete the half-made "
    "cluster {name}, and clone again."
)
SOURCE_FIX = (
    " Fix: make sure the source cluster and its repo exist (or pick another source), delete "
    "the half-made cluster {name}, and clone again."
)
NOT_STARTED = (
    "PGO has not started the restore after {seconds:.0f} s. Fix: check that PGO watches "
    "namespace {ns} and read its log; touch an annotation on {name} to make it look again (§0)."
)
AFFINITY = "Only node-label affinity (In, one value) can be set on the restore Job."
STANDBY_NOT_CLOUD = (
    "{repo} of {name} is not a cloud repo; a repo standby replays from a bucket both share. "
    "Use a streaming standby (host and port) instead."
)
STANDBY_READY = "{name} is a standby: its leader replays from {source}."


def _job(req: CloneRequest) -> RestoreJob | None:
    """The restore Job's resources and scheduling from the request's raw dicts."""
    resources, affinity = req.resources or {}, req.affinity or {}
    node_labels: list[tuple[str, str]] = []
    if affinity:
        try:
            terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            for term in terms["nodeSelectorTerms"]:
                for expr in term["matchExpressions"]:
                    if expr["operator"] != "In" or len(expr["values"]) != 1:
                        raise PermanentError(AFFINITY)
                    node_labels.append((expr["key"], expr["values"][0]))
        except (KeyError, TypeError) as exc:
            raise PermanentError(AFFINITY) from exc
    tolerations = tuple(
        Toleration(key=t.get("key", ""), operator=t.get("operator", "Equal"),
                   value=t.get("value", ""), effect=t.get("effect", ""),
                   seconds=t.get("tolerationSeconds"))
        for t in req.tolerations
    )
    if not (resources or node_labels or tolerations):
        return None
    return RestoreJob(
        requests=tuple((resources.get("requests") or {}).items()),
        limits=tuple((resources.get("limits") or {}).items()),
        node_labels=tuple(node_labels), tolerations=tolerations,
    )


def _global_paths(obj: dict[str, Any]) -> tuple[str, ...]:
    pgbackrest = ((obj.get("spec") or {}).get("backups") or {}).get("pgbackrest") or {}
    return tuple(v for k, v in (pgbackrest.get("global") or {}).items() if k.endswith("-path"))


class ClonesMixin(KubeCore):
    # -- the manifest --------------------------------------------------------------------

    def clone_manifest(self, req: CloneRequest) -> dict[str, Any]:
        """The PostgresCluster to create: from req.source's repo req.repo
        (spec.dataSource.postgresCluster), or from the cloud repo req.cloud
        (spec.dataSource.pgbackrest). The restore options always come from req.point
        (validated, shell-safe)."""
        self.check_namespace(req.target)
        options = tuple(pgo_restore_options(
            req.point, now=self.now(), db_include=req.db_include, process_max=req.process_max,
        ))
        image, postgres_version = None, req.postgres_version
        repos: tuple[RepoSpec, ...] = (RepoSpec("repo1", volume_size=req.storage or "1Gi"),)
        secret = None
        if req.cloud is not None:
            cloud = req.cloud
            source = CloneSource(cloud=dataclasses.replace(cloud, options=options))
            if req.backups_to_cloud:  # §3.4: same storage and credentials, its own path
                own = cloud.repo
                repos = (RepoSpec("repo1", s3=own.s3, gcs=own.gcs, azure=own.azure),)
                secret = cloud.configuration_secret
        else:
            assert req.source is not None
            self.check_namespace(req.source)
            src = self.kube.get_cluster(req.source.namespace, req.source.name)
            if src is None:
                raise PermanentError(SOURCE_MISSING.format(**vars(req.source)))
            if req.repo not in state.repo_names(src):
                raise PermanentError(SOURCE_NO_REPO.format(name=req.source.name, repo=req.repo))
            postgres_version = postgres_version or int(src["spec"]["postgresVersion"])
            image = src["spec"].get("image")
            other_ns = req.source.namespace != req.target.namespace
            source = CloneSource(cluster=LiveSource(
                cluster_name=req.source.name, repo_name=req.repo,
                cluster_namespace=req.source.namespace if other_ns else None,
                options=options, repo_paths=_global_paths(src),
            ))
        if postgres_version is None:
            raise PermanentError(NEEDS_VERSION)
        spec = ClusterSpec(
            name=req.target.name, namespace=req.target.namespace,
            postgres_version=postgres_version, image=image, repos=repos,
            configuration_secret=secret,
            storage=req.storage or "1Gi", restore_job=_job(req),
        )
        manifest = clone_manifest(spec, source)
        manifest["metadata"]["annotations"] = {OPERATION_ANNOTATION: req.operation_id}
        return manifest

    def dry_run_clone(self, req: CloneRequest) -> list[str]:
        """The API server's verdict on creating the clone (dryRun=All): [] = accepted."""
        manifest = self.clone_manifest(req)
        try:
            self.kube.create_cluster(manifest, dry_run=True)
        except Conflict as exc:
            if exc.exists:
                return [FOREIGN.format(**vars(req.target))]
            raise
        except PermanentError as exc:
            return _causes(exc)
        return []

    def clone_plan(self, req: CloneRequest) -> ClonePlan:
        manifest = self.clone_manifest(req)
        ns, name = req.target.namespace, req.target.name
        existing = self.kube.get_cluster(ns, name)
        if existing is not None and _ours(existing, req.operation_id):
            verdict = "The cluster exists already (created by this operation)."
        else:
            errors = self.dry_run_clone(req)
            if errors:
                raise PermanentError(REFUSED.format(errors="; ".join(errors)))
            verdict = "The API server accepts this manifest (server-side dry run)."
        origin = req.origin if req.cloud is None else "the cloud repo " + req.origin
        steps = (
            f"Create PostgresCluster {ns}/{name}; PGO restores it from {origin} with a "
            f"Job {state.RESTORE_JOB.format(name=name)}.",
            verdict,
            "When the restore Job has finished and the cluster is ready, remove "
            "spec.dataSource so the clone can never restore again (hazard H1).",
        )
        kubectl = (
            f"kubectl apply --server-side --field-manager=dr-console -f {name}.yaml",
            f"kubectl -n {ns} get postgrescluster {name} -o jsonpath='{{.status.pgbackrest}}'",
            f"kubectl -n {ns} logs job/{state.RESTORE_JOB.format(name=name)}",
            f"kubectl -n {ns} patch postgrescluster {name} --type=merge "
            "-p '{\"spec\":{\"dataSource\":null}}'",
        )
        return ClonePlan(steps=steps, manifest=manifest, kubectl=kubectl)

    def _create_owned(
        self, ref: ClusterRef, operation_id: str, build: Any, obj: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any] | None, JobStatus | None]:
        """The cluster this operation created (`obj`, or read; created if missing), or a
        failed status when the name belongs to someone else."""
        if obj is None:
            obj = self.kube.get_cluster(ref.namespace, ref.name)
        if obj is None:
            manifest = build()
            try:
                self.kube.create_cluster(manifest)
                return None, JobStatus("running", f"Created PostgresCluster {ref.name}.")
            except Conflict as exc:
                if not exc.exists:
                    raise
                obj = self.kube.get_cluster(ref.namespace, ref.name)  # a racing advance?
                if obj is None:
                    raise
        if not _ours(obj, operation_id):
            return None, JobStatus("failed", FOREIGN.format(**vars(ref)))
        return obj, None

    def clone_advance(self, req: CloneRequest) -> JobStatus:
        """Create the clone, follow PGO's restore (§9), clear spec.dataSource once ready
        (H1), and report the restore's duration."""
        self.check_namespace(req.target)
        existing = self.kube.get_cluster(req.target.namespace, req.target.name)
        if existing is None and req.source is not None:  # only a clone not yet made needs
            self.check_namespace(req.source)  # its source; a cloud repo is PGO's to check
            if self.kube.get_cluster(req.source.namespace, req.source.name) is None:
                return JobStatus("failed", SOURCE_MISSING.format(**vars(req.source)))
        obj, early = self._create_owned(
            req.target, req.operation_id,
            lambda: self.clone_manifest(req), existing,
        )
        if obj is None:
            return early  # type: ignore[return-value]
        ref, name = req.target, req.target.name
        restore = state.pgbackrest_status(obj).get("restore") or {}
        events = self.events(ref)
        verdict, message = ("running", "Waiting for PGO to start the restore.")
        if restore:
            verdict, message = state.restore_verdict(obj, events)
        if verdict == "failed":
            fix = (CLOUD_RESTORE_FIX if req.cloud else RESTORE_FIX if restore.get("startTime")
                   else SOURCE_FIX).format(
                ns=ref.namespace, job=state.RESTORE_JOB.format(name=name), name=name,
                secret=f" (Secret {req.cloud.configuration_secret})"
                if req.cloud and req.cloud.configuration_secret else "")
            text = message if message.endswith(".") else message + "."
            return JobStatus("failed", text + fix, detail=_event_text(events))
        if not restore.get("startTime") and not restore.get("finished"):
            if self.age(obj) > self.stuck_after:
                return JobStatus("failed", NOT_STARTED.format(
                    seconds=self.age(obj), ns=ref.namespace, name=name))
            return JobStatus("pending", message)
        if verdict != "done":
            return JobStatus("running", message)
        reasons = state.not_ready_reasons(obj, self.leaders(ref))
        if reasons:
            return JobStatus("running", "Restored; starting: " + "; ".join(reasons) + ".")
        if (obj.get("spec") or {}).get("dataSource"):
            self.patch_fresh(ref, lambda o: data_source_clear_patch()
                             if (o.get("spec") or {}).get("dataSource") else None)
        return JobStatus("succeeded", f"{name} is ready, restored by PGO.", _timings(restore))

    # -- standbys ---------------------------------------------------------------------------

    def standby_manifest(self, req: StandbyRequest) -> dict[str, Any]:
        self.check_namespace(req.source)
        self.check_namespace(req.target)
        src = self.kube.get_cluster(req.source.namespace, req.source.name)
        if src is None:
            raise PermanentError(SOURCE_MISSING.format(**vars(req.source)))
        pgbackrest = ((src["spec"].get("backups") or {}).get("pgbackrest")) or {}
        settings = pgbackrest.get("global") or {}
        secret = next((c["secret"]["name"] for c in pgbackrest.get("configuration") or ()
                       if "secret" in c), None)
        repos: tuple[RepoSpec, ...] = (RepoSpec("repo1", volume_size=req.storage or "1Gi"),)
        global_options: tuple[tuple[str, str], ...] = ()
        if req.repo:
            found = next((r for r in pgbackrest.get("repos") or () if r["name"] == req.repo),
                         None)
            cloud = next((k for k in ("s3", "gcs", "azure") if found and k in found), None)
            if cloud is None:
                raise PermanentError(STANDBY_NOT_CLOUD.format(repo=req.repo, name=req.source.name))
            store = {"s3": S3, "gcs": GCS, "azure": Azure}[cloud](**found[cloud])
            repos = (RepoSpec(req.repo, **{cloud: store},
                              path=settings.get(f"{req.repo}-path")),)
            global_options = tuple(sorted(
                (k, v) for k, v in settings.items()
                if k.startswith(f"{req.repo}-") and not k.endswith("-path")
            ))
        spec = ClusterSpec(
            name=req.target.name, namespace=req.target.namespace,
            postgres_version=int(src["spec"]["postgresVersion"]), image=src["spec"].get("image"),
            repos=repos, storage=req.storage or "1Gi", configuration_secret=secret,
            global_options=global_options,
        )
        manifest = standby_manifest(spec, repo_name=req.repo, host=req.host, port=req.port)
        manifest["metadata"]["annotations"] = {
            OPERATION_ANNOTATION: req.operation_id,
            STANDBY_OF_ANNOTATION: f"{req.source.namespace}/{req.source.name}",
        }
        return manifest

    def standby_advance(self, req: StandbyRequest) -> JobStatus:
        """Create the standby; done when it is ready and its leader is a standby_leader."""
        obj, early = self._create_owned(req.target, req.operation_id,
                                        lambda: self.standby_manifest(req))
        if obj is None:
            return early  # type: ignore[return-value]
        ref = req.target
        if event := state.newest_event(self.events(ref), state.STANDBY_EVENTS):
            return JobStatus("failed", f"PGO refused the standby: {event.get('message')}")
        leaders = self.leaders(ref)
        reasons = state.not_ready_reasons(obj, leaders)
        if reasons:
            return JobStatus("running", "Starting: " + "; ".join(reasons) + ".")
        if not any(state.patroni_role(p) == "standby_leader" for p in leaders):
            return JobStatus("running", "Ready, but its leader does not say standby_leader yet.")
        source = f"{req.source.namespace}/{req.source.name}"
        return JobStatus("succeeded", STANDBY_READY.format(name=ref.name, source=source),
                         {"cluster": ref.name})


def _ours(obj: dict[str, Any], operation_id: str) -> bool:
    return state.annotations(obj).get(OPERATION_ANNOTATION) == operation_id


def _causes(exc: PermanentError) -> list[str]:
    """The field errors of a refused request (422 details), else its message."""
    try:
        body = json.loads(exc.detail or "{}")
    except ValueError:
        body = {}
    causes = [f"{c.get('field', '')}: {c.get('message', '')}".lstrip(": ")
              for c in (body.get("details") or {}).get("causes") or ()]
    return causes or [str(body.get("message") or exc.message)]


def _event_text(events: list[dict[str, Any]]) -> str:
    return "\n".join(f"{e.get('lastTimestamp')} {e.get('reason')}: {e.get('message')}"
                     for e in events)


def _timings(restore: dict[str, Any]) -> dict[str, str]:
    result = {}
    started = state.timestamp(restore.get("startTime"))
    done = state.timestamp(restore.get("completionTime"))
    if started:
        result["restore_started_at"] = started.isoformat()
    if started and done:
        result["restore_completed_at"] = done.isoformat()
        result["restore_seconds"] = str(round((done - started).total_seconds(), 1))
    return result
