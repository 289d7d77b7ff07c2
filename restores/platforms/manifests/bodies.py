"""PostgresCluster bodies: a new cluster, a clone or PITR from a live cluster or a cloud repo,
a standby (§3.3 to §3.7)."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from ..restore_options import check_pgo_options
from .specs import (
    API_VERSION,
    BAD_GLOBAL,
    BAD_HOST,
    BAD_PORT,
    CLONE_OF_ITSELF,
    DNS1123_SUBDOMAIN_RE,
    KIND,
    PGO_DEFAULT_REPO_PATH,
    REPO_PATH_CLASH,
    SOURCE_BOTH,
    SOURCE_NEITHER,
    SOURCE_NOT_CLOUD,
    STANDBY_NEEDS_SOURCE,
    STANDBY_REPO,
    CloneSource,
    ClusterSpec,
    RepoSpec,
    check_cluster,
    check_ref,
    check_repo,
    checked_path,
    fail,
    full,
    global_settings,
    job_fields,
    k8s_name,
    repo_index,
)


def repo_path(namespace: str, name: str, repo: str) -> str:
    """The console's path for a cloud repo of cluster namespace/name."""
    return f"/pgbackrest/{namespace}/{name}/{repo}"


def _claim(size: str, storage_class: str | None) -> dict[str, Any]:
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    claim["resources"] = {"requests": {"storage": size}}
    return {**claim, "storageClassName": storage_class} if storage_class else claim


def _repo_body(repo: RepoSpec) -> dict[str, Any]:
    if repo.volume_size is not None:
        claim = _claim(repo.volume_size, repo.storage_class)
        return {"name": repo.name, "volume": {"volumeClaimSpec": claim}}
    cloud = next(
        (k, v) for k, v in (("s3", repo.s3), ("gcs", repo.gcs), ("azure", repo.azure)) if v
    )
    return {"name": repo.name, cloud[0]: dataclasses.asdict(cloud[1])}


def _cluster(spec: ClusterSpec, *, verbatim: str | None = None) -> dict[str, Any]:
    """The body of a new cluster. Cloud repos get the console's path unless given one; the
    repo named `verbatim` (a standby's) keeps its given path, or PGO's default."""
    check_cluster(spec)
    global_ = global_settings(spec.global_options)
    for repo in spec.repos:
        if repo.is_cloud and (repo.path or repo.name != verbatim):
            own = repo_path(spec.namespace, spec.name, repo.name)
            global_[f"{repo.name}-path"] = repo.path or own
    pgbackrest: dict[str, Any] = {"repos": [_repo_body(r) for r in spec.repos]}
    if spec.configuration_secret:
        pgbackrest["configuration"] = [{"secret": {"name": spec.configuration_secret}}]
    if global_:
        pgbackrest["global"] = dict(sorted(global_.items()))
    instance: dict[str, Any] = {"name": spec.instance_name} if spec.instance_name else {}
    instance["replicas"] = spec.replicas
    instance["dataVolumeClaimSpec"] = _claim(spec.storage, spec.storage_class)
    body: dict[str, Any] = {"postgresVersion": spec.postgres_version}
    body.update({"image": spec.image} if spec.image else {})
    body.update(instances=[instance], backups={"pgbackrest": pgbackrest})
    metadata = {"name": spec.name, "namespace": spec.namespace}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


# -- bodies --------------------------------------------------------------------------------


def cluster_manifest(spec: ClusterSpec) -> dict[str, Any]:
    """A new, empty PostgresCluster with its own backups."""
    return _cluster(spec)


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def clone_manifest(target: ClusterSpec, source: CloneSource) -> dict[str, Any]:
    """A new cluster restored from `source` (§3.3-3.5), with its own backups on paths that
    neither equal nor nest with the source's (its known paths, and PGO's defaults)."""
    if source.cluster is not None and source.cloud is not None:
        raise fail(SOURCE_BOTH)
    manifest = _cluster(target)
    taken = [PGO_DEFAULT_REPO_PATH.format(index=n) for n in range(1, 5)]
    entry: dict[str, Any]
    if source.cluster is not None:
        live = source.cluster
        namespace = live.cluster_namespace or target.namespace
        check_ref(live.cluster_name, namespace, "source cluster name")
        if (live.cluster_name, namespace) == (target.name, target.namespace):
            raise fail(CLONE_OF_ITSELF)
        repo_index(live.repo_name)
        # Its known paths, and the directory of the console's paths for it.
        taken += [*map(checked_path, live.repo_paths),
                  f"/pgbackrest/{namespace}/{live.cluster_name}"]
        entry = {"clusterName": live.cluster_name, "repoName": live.repo_name}
        if namespace != target.namespace:
            entry["clusterNamespace"] = namespace
        options, data_source = check_pgo_options(live.options), {"postgresCluster": entry}
    elif source.cloud is not None:
        cloud = source.cloud
        check_repo(cloud.repo)
        if not cloud.repo.is_cloud:
            raise fail(SOURCE_NOT_CLOUD)
        if not full(DNS1123_SUBDOMAIN_RE, cloud.stanza, 253):
            raise fail(BAD_GLOBAL, key="stanza", value=cloud.stanza)
        global_ = global_settings(cloud.global_options, repo=cloud.repo.name)
        if cloud.repo.path:
            global_[f"{cloud.repo.name}-path"] = cloud.repo.path
            taken.append(cloud.repo.path)
        entry = {"stanza": cloud.stanza}
        if cloud.configuration_secret:
            secret = {"name": k8s_name(cloud.configuration_secret)}
            entry["configuration"] = [{"secret": secret}]
        entry.update({"global": dict(sorted(global_.items()))} if global_ else {})
        entry["repo"] = _repo_body(cloud.repo)
        options, data_source = check_pgo_options(cloud.options), {"pgbackrest": entry}
    else:
        raise fail(SOURCE_NEITHER)
    own = manifest["spec"]["backups"]["pgbackrest"].get("global", {})
    for repo in target.repos:
        path = own.get(f"{repo.name}-path")
        if clash := next((t for t in taken if path and _overlaps(path, t)), None):
            raise fail(REPO_PATH_CLASH, repo=repo.name, path=path, source=clash)
    entry.update({"options": options} if options else {})
    entry.update(job_fields(target.restore_job))
    manifest["spec"]["dataSource"] = data_source
    return manifest


def standby_manifest(
    target: ClusterSpec,
    *,
    repo_name: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """A new standby (§3.7) replaying from `repo_name`, one of target.repos pointing at the
    primary's cloud repo (its `path` is used as given: the primary's, None for PGO's
    default), and/or streaming from host:port (default 5432)."""
    if repo_name is None and host is None:
        raise fail(STANDBY_NEEDS_SOURCE)
    standby: dict[str, Any] = {"enabled": True}
    if repo_name is not None:
        if not any(r.name == repo_name and r.is_cloud for r in target.repos):
            raise fail(STANDBY_REPO, repo=repo_name)
        standby["repoName"] = repo_name
    if host is not None:
        if not full(DNS1123_SUBDOMAIN_RE, host, 253):
            try:
                ipaddress.ip_address(host)
            except ValueError as exc:
                raise fail(BAD_HOST, host=host) from exc
        port = 5432 if port is None else port
        standby["host"] = host
    if port is not None:
        if type(port) is not int or not 1024 <= port <= 65535:
            raise fail(BAD_PORT)
        standby["port"] = port
    manifest = _cluster(target, verbatim=repo_name)
    manifest["spec"]["standby"] = standby
    return manifest


# -- patches (JSON merge patches, RFC 7386) ------------------------------------------------
