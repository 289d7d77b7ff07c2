"""An operation's parameters, and what they become: the one place a stored row turns into
what the pure rules and the platforms take (a repo's window, a clone, in-place, standby or
scratch request), so services and steps build them alike and a step never calls back into a
service. Restore targets are stored in their one JSON form (platforms.targets)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from restores import rules
from restores.models.inventory import Repository
from restores.models.operations import Operation
from restores.platforms import manifests
from restores.platforms.base import CloneRequest, ClusterRef, InPlaceRestoreRequest, StandbyRequest
from restores.platforms.targets import target_from_json


def utc_text(at: dt.datetime) -> str:
    return f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def repo_window(repo: Repository) -> rules.Window:
    """The repo's recoverable window and backups as the rules check a point against."""
    backups = [
        rules.BackupPoint(b.label, b.stopped_at, b.lsn_stop, b.error)
        for b in repo.backups.order_by("stopped_at")
    ]
    return rules.Window(repo.name, repo.earliest_recovery, repo.latest_recovery,
                        repo.latest_wal, backups)


def operation_ref(op: Operation) -> ClusterRef:
    return ClusterRef(op.cluster.namespace, op.cluster.name)


# --- clones --------------------------------------------------------------------------------


def cloud_source(data: dict[str, Any]) -> manifests.CloudSource:
    """The data source a stored cloud answer describes (the manifest builder checks it)."""
    kind, bucket = data["storage"], data["bucket"]
    storage = {
        "s3": lambda: {"s3": manifests.S3(bucket, data.get("endpoint", ""),
                                          data.get("region", ""))},
        "gcs": lambda: {"gcs": manifests.GCS(bucket)},
        "azure": lambda: {"azure": manifests.Azure(bucket)},
    }[kind]()
    repo = manifests.RepoSpec(data.get("repo_name") or "repo1", path=data.get("path") or None,
                              **storage)
    return manifests.CloudSource(
        repo=repo, stanza=data.get("stanza") or "db",
        configuration_secret=data.get("configuration_secret") or None,
        global_options=tuple((k, v) for k, v in data.get("global_options") or ()),
    )


def restore_job_spec(answers: dict[str, Any]) -> manifests.RestoreJob | None:
    """The restore Job's size and placement as the manifest builder takes them."""
    if not answers or not any(answers.values()):
        return None
    tolerations: tuple[manifests.Toleration, ...] = ()
    if answers.get("toleration"):
        taint, effect = answers["toleration"].rsplit(":", 1)
        key, _, value = taint.partition("=")
        operator = "Equal" if value else "Exists"
        tolerations = (manifests.Toleration(key=key, operator=operator, value=value,
                                            effect=effect),)
    return manifests.RestoreJob(
        requests=tuple((k, v) for k, v in answers.get("requests") or ()),
        limits=tuple((k, v) for k, v in answers.get("limits") or ()),
        node_labels=tuple((k, v) for k, v in answers.get("node_labels") or ()),
        tolerations=tolerations,
    )


def _scheduling(job: dict[str, Any]) -> dict[str, Any]:
    """CloneRequest's Kubernetes fields from the stored restore Job answers, in the shapes of
    the Kubernetes API (what KubernetesPlatform reads back into the manifest's restore Job):
    node labels as a required node affinity with one `In` expression each."""
    spec = restore_job_spec(job)
    if spec is None:
        return {}
    affinity = None
    if spec.node_labels:
        match = [{"key": k, "operator": "In", "values": [v]} for k, v in spec.node_labels]
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": match}]}}}
    return {
        "resources": {"requests": dict(spec.requests), "limits": dict(spec.limits)},
        "affinity": affinity,
        "tolerations": tuple(
            {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect,
             **({"tolerationSeconds": t.seconds} if t.seconds is not None else {})}
            for t in spec.tolerations
        ),
    }


def clone_request(operation_id: str, params: dict[str, Any]) -> CloneRequest:
    """The clone a clone operation's parameters (or a draft's, as the wizard stores them:
    source, repo, point, target) describe."""
    t, origin = params["target"], params["source"]
    cloud = origin.get("cloud")
    return CloneRequest(
        operation_id=operation_id,
        source=None if cloud else ClusterRef(origin["namespace"], origin["name"]),
        repo=params["repo"],
        target=ClusterRef(t["namespace"], t["name"]),
        point=target_from_json(params["point"]),
        db_include=tuple(t.get("db_include") or ()),
        process_max=t.get("process_max"),
        storage=t.get("storage") or "1Gi",
        cloud=cloud_source(cloud) if cloud else None,
        postgres_version=int(cloud["postgres_version"]) if cloud else None,
        backups_to_cloud=bool(cloud and cloud.get("backups_to_cloud")),
        **_scheduling(t.get("restore_job") or {}),
    )


def clone_request_of(op: Operation) -> CloneRequest:
    """The clone request a clone operation was created with."""
    return clone_request(op.refs["trigger"], op.params)


# --- drills --------------------------------------------------------------------------------


def scratch_ref(op: Operation) -> ClusterRef:
    scratch = op.refs["scratch"]
    return ClusterRef(scratch["namespace"], scratch["name"])


def scratch_request(op: Operation) -> CloneRequest:
    """The clone a drill makes: the source's repo at the drill's point, into its scratch
    cluster, which never writes to any repo."""
    return CloneRequest(
        operation_id=op.refs["trigger"],
        source=operation_ref(op),
        repo=op.params["repo"],
        target=scratch_ref(op),
        point=target_from_json(op.params["point"]),
        storage=op.params.get("storage") or "1Gi",
        scratch=True,
    )


# --- operations on an existing cluster -----------------------------------------------------


def in_place_request(op: Operation) -> InPlaceRestoreRequest:
    """An in-place or database restore; `db_set` once the first step has checked the names
    against that set."""
    p = op.params
    return InPlaceRestoreRequest(
        operation_id=op.refs["trigger"], cluster=operation_ref(op), repo=p["repo"],
        point=target_from_json(p["point"]), db_include=tuple(p.get("db_include") or ()),
        process_max=p.get("process_max"), db_set=op.refs.get("db_set", ""),
    )


def standby_request(op: Operation) -> StandbyRequest:
    p = op.params
    return StandbyRequest(
        operation_id=op.refs["trigger"],
        source=ClusterRef(p["source"]["namespace"], p["source"]["name"]),
        target=operation_ref(op), repo=p.get("repo"), host=p.get("host"), port=p.get("port"),
        storage=p.get("storage", ""),
    )
