"""Pure builders of PGO v5 `PostgresCluster` bodies and merge patches.

Inputs are frozen dataclasses, checked here; restore options must be built by
`restore_options.pgo_restore_options` (`check_pgo_options` refuses anything else). § numbers
refer to shared/pgo/PGO-REFERENCE.md. The tests validate every output against the real CRD.

Repo paths: PGO sets `repoN-path=/pgbackrest/repoN` unless `global` overrides it. A volume
repo is its own PVC mounted at exactly /pgbackrest/repoN, so it never gets another path (one
outside the mount would put backups on the container's ephemeral disk). A cloud repo gets
`/pgbackrest/<namespace>/<name>/repoN` unless given one, so a clone never archives into the
bucket path of its source (§3.3, §3.4, pain point 14).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from .base import PermanentError
from .crd import API_VERSION, DNS1035_LABEL_RE, DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_RE, KIND
from .restore_options import check_pgo_options
from .secrets import is_credential

PFX = "postgres-operator.crunchydata.com/"
BACKUP_ANNOTATION = PFX + "pgbackrest-backup"  # §2: manual backup trigger
RESTORE_ANNOTATION = PFX + "pgbackrest-restore"  # §2: in-place restore trigger
PGO_DEFAULT_REPO_PATH = "/pgbackrest/repo{index}"
# §1.1 and the CRD's description of instances[].name: "The combined length of this and the
# cluster name must be 46 characters or less." An unnamed set is "00". (The StatefulSet
# `<cluster>-<set>-xxxx` plus an 11-character revision suffix must fit a 63-character label.)
MAX_CLUSTER_AND_SET = 46
# [inferred, same arithmetic] The restore Job `<cluster>-pgbackrest-restore` (§4) becomes a
# job-name label (63 - 19), and the repo host StatefulSet `<cluster>-repo-host` of a volume
# repo needs an 11-character revision suffix (52 - 10).
MAX_CLUSTER_FOR_RESTORE_JOB = 44
MAX_CLUSTER_WITH_REPO_HOST = 42

REPO_RE = re.compile(r"repo([1-4])", re.ASCII)
QUANTITY_RES = {
    "cpu": re.compile(r"[0-9]+(\.[0-9]+)?m?", re.ASCII),
    "memory": re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", re.ASCII),
}
PATH_RE = re.compile(r"(/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}){1,16}", re.ASCII)
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", re.ASCII)
ENDPOINT_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(:[0-9]{1,5})?", re.ASCII)
REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}", re.ASCII)
GLOBAL_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
TRIGGER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,62}", re.ASCII)
BACKUP_OPTION_RE = re.compile(r"--[a-z][a-z0-9-]*(=[A-Za-z0-9._:/@+,=-]+)?", re.ASCII)
LABEL_KEY_RE = re.compile(r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?", re.ASCII)
TAINT_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")

BAD_NAME = "The {what} {name!r} must be a DNS-1035 label (a-z, 0-9, '-'; at most 63)."
BAD_NAMESPACE = "The namespace {name!r} must be a DNS-1123 label (a-z, 0-9, '-'; at most 63)."
BAD_INSTANCE = "The instance set name {name!r} must be empty or a DNS-1123 label."
TOO_LONG_WITH_SET = "Cluster and instance set names are {n} characters; PGO allows 46."
TOO_LONG_FOR_RESTORE_JOB = "The cluster name is {n} characters; PGO's restore Job allows 44."
TOO_LONG_WITH_REPO_HOST = "The cluster name is {n} characters; a volume repo's host allows 42."
BAD_VERSION = "The PostgreSQL version must be a whole number from 11 to 18."
BAD_REPLICAS = "The number of replicas must be a whole number of at least 1."
BAD_QUANTITY = "{what} {value!r} is not a Kubernetes quantity such as 1Gi or 500m."
BAD_IMAGE = "{image!r} is not a container image reference."
BAD_K8S_NAME = "{name!r} is not a Kubernetes object name (a DNS-1123 subdomain)."
NO_REPOS = "A cluster needs at least one pgBackRest repo (§10 H1(d))."
BAD_REPO = "{repo!r} is not a pgBackRest repo name (repo1 to repo4)."
DUPLICATE_REPO = "The repo {repo} is listed twice."
REPO_STORAGE = "The repo {repo} needs exactly one storage: a volume size, S3, GCS or Azure."
BAD_CLOUD = "The {what} {value!r} of repo {repo} is not valid."
BAD_PATH = "The repo path {path!r} must be absolute, with letters, digits and . _ - only."
VOLUME_PATH = "The volume repo {repo} is mounted at /pgbackrest/{repo}; it takes no path."
BAD_GLOBAL = "The pgBackRest setting {key!r}={value!r} is not valid."
GLOBAL_PATH = "Set the path of {key} on the repo, not as a global setting."
GLOBAL_CREDENTIAL = (
    "{key} holds a credential: it never goes into a manifest. Put it in the Secret the repo's "
    "configuration names (the credentials Secret), where PGO reads it."
)
GLOBAL_OTHER_REPO = "The setting {key!r} is not for the data source's {repo}."
BAD_JOB = "The restore Job's {what} {value!r} is not valid."
SOURCE_NEITHER = "A clone needs a source: a live cluster or a cloud repo."
SOURCE_BOTH = "A clone has one source; with both, PGO silently ignores the cloud repo (§1.3)."
CLONE_OF_ITSELF = "A clone needs a name or namespace different from its source cluster."
SOURCE_NOT_CLOUD = "Only S3, GCS or Azure repos can be used as a pgBackRest data source."
REPO_PATH_CLASH = "The clone's {repo} path {path} overlaps the source's {source}; choose another."
STANDBY_NEEDS_SOURCE = "A standby needs a repo to replay from, or a primary host to stream from."
STANDBY_REPO = "The standby's repo {repo} must be one of its cloud repos (the primary's)."
BAD_HOST = "{host!r} is not a host name or IP address."
BAD_PORT = "The port must be a whole number from 1024 to 65535."
BAD_SHUTDOWN = "Shutting down is a yes or no (a bool)."
BAD_TRIGGER = "{value!r} cannot be used as a PGO trigger annotation value."
BAD_BACKUP_OPTION = "The backup option {option!r} is not allowed (PGO sets --repo and --stanza)."


class InvalidManifest(PermanentError):
    """Input the builders refuse; retrying cannot help."""


def _fail(message: str, **values: object) -> InvalidManifest:
    return InvalidManifest(message.format(**values))


def _full(pattern: re.Pattern[str], text: object, limit: int = 1000) -> bool:
    return isinstance(text, str) and len(text) <= limit and pattern.fullmatch(text) is not None


@dataclasses.dataclass(frozen=True)
class S3:
    bucket: str
    endpoint: str
    region: str


@dataclasses.dataclass(frozen=True)
class GCS:
    bucket: str


@dataclasses.dataclass(frozen=True)
class Azure:
    container: str


@dataclasses.dataclass(frozen=True)
class RepoSpec:
    """One pgBackRest repo: a volume of `volume_size`, or one cloud storage, where `path`
    is its path (None: the console's default, see the module doc)."""

    name: str
    volume_size: str | None = None
    storage_class: str | None = None
    s3: S3 | None = None
    gcs: GCS | None = None
    azure: Azure | None = None
    path: str | None = None

    @property
    def is_cloud(self) -> bool:
        return self.volume_size is None


@dataclasses.dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"  # or Exists
    value: str = ""
    effect: str = ""  # NoSchedule, PreferNoSchedule, NoExecute or "" (all)
    seconds: int | None = None  # only with NoExecute


@dataclasses.dataclass(frozen=True)
class RestoreJob:
    """How big the restore Job is and where it runs. `requests`/`limits`: (cpu|memory,
    quantity) pairs; `node_labels`: (key, value) pairs a node must all have."""

    requests: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()
    node_labels: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    priority_class: str | None = None


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    name: str
    namespace: str
    postgres_version: int
    repos: tuple[RepoSpec, ...]
    image: str | None = None
    instance_name: str = "instance1"  # "" leaves it to PGO ("00")
    replicas: int = 1
    storage: str = "1Gi"
    storage_class: str | None = None
    configuration_secret: str | None = None  # pgBackRest credentials, e.g. pgo-s3-creds
    global_options: tuple[tuple[str, str], ...] = ()  # e.g. (("repo1-retention-full", "7"),)
    restore_job: RestoreJob | None = None


@dataclasses.dataclass(frozen=True)
class LiveSource:
    """An existing PostgresCluster. `repo_paths`: the repoN-path values its spec sets, so
    the clone's paths are kept apart from them too."""

    cluster_name: str
    repo_name: str
    cluster_namespace: str | None = None  # None: the clone's namespace
    options: tuple[str, ...] = ()
    repo_paths: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CloudSource:
    """A cloud repo with no live cluster; `repo.path` is the source's path in it (None:
    PGO's default /pgbackrest/repoN)."""

    repo: RepoSpec
    stanza: str = "db"
    configuration_secret: str | None = None
    global_options: tuple[tuple[str, str], ...] = ()
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        """The repo as an operator names it: s3://bucket/path, gs://..., azure://..."""
        repo = self.repo
        path = repo.path or PGO_DEFAULT_REPO_PATH.format(index=repo.name.removeprefix("repo"))
        where = (f"s3://{repo.s3.bucket}" if repo.s3 else f"gs://{repo.gcs.bucket}"
                 if repo.gcs else f"azure://{repo.azure.container}" if repo.azure
                 else repo.name)
        return f"{where}{path} (stanza {self.stanza})"


@dataclasses.dataclass(frozen=True)
class CloneSource:
    """Exactly one of: `spec.dataSource.postgresCluster` or `spec.dataSource.pgbackrest`."""

    cluster: LiveSource | None = None
    cloud: CloudSource | None = None


# -- checks --------------------------------------------------------------------------------


def _quantity(value: object, what: str, kind: str = "memory") -> str:
    if not _full(QUANTITY_RES[kind], value, 32) or not any(c in "123456789" for c in str(value)):
        raise _fail(BAD_QUANTITY, what=what, value=value)
    return str(value)


def _k8s_name(name: object) -> str:
    if not _full(DNS1123_SUBDOMAIN_RE, name, 253):
        raise _fail(BAD_K8S_NAME, name=name)
    return str(name)


def _cluster_ref(name: object, namespace: object, what: str = "cluster name") -> None:
    if not _full(DNS1035_LABEL_RE, name, 63):
        raise _fail(BAD_NAME, what=what, name=name)
    if not _full(DNS1123_LABEL_RE, namespace, 63):
        raise _fail(BAD_NAMESPACE, name=namespace)


def _path(path: object) -> str:
    if not _full(PATH_RE, path) or any(part in (".", "..") for part in str(path).split("/")):
        raise _fail(BAD_PATH, path=path)
    return str(path)


def _repo_index(name: object) -> str:
    match = REPO_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise _fail(BAD_REPO, repo=name)
    return match.group(1)


def _check_repo(repo: RepoSpec) -> None:
    _repo_index(repo.name)
    if sum(x is not None for x in (repo.volume_size, repo.s3, repo.gcs, repo.azure)) != 1:
        raise _fail(REPO_STORAGE, repo=repo.name)
    if repo.volume_size is not None:
        _quantity(repo.volume_size, "The repo size")
    if repo.storage_class is not None:
        _k8s_name(repo.storage_class)
    if repo.path is not None and not repo.is_cloud:
        raise _fail(VOLUME_PATH, repo=repo.name)
    if repo.path is not None:
        _path(repo.path)
    checks = [("bucket", BUCKET_RE, x.bucket) for x in (repo.s3, repo.gcs) if x]
    if repo.s3:
        checks += [
            ("endpoint", ENDPOINT_RE, repo.s3.endpoint),
            ("region", REGION_RE, repo.s3.region),
        ]
    if repo.azure:
        checks = [("container", BUCKET_RE, repo.azure.container)]
    for what, pattern, value in checks:
        if not _full(pattern, value, 255):
            raise _fail(BAD_CLOUD, what=what, value=value, repo=repo.name)


def _global(options: tuple[tuple[str, str], ...], repo: str | None = None) -> dict[str, str]:
    """Checked `global` settings; `repo` (a data source's) restricts repoN- keys to it."""
    result = {}
    for key, value in options:
        if isinstance(key, str) and is_credential(key):  # before any message shows the value
            raise _fail(GLOBAL_CREDENTIAL, key=key)
        if not _full(GLOBAL_KEY_RE, key) or not isinstance(value, str) or not value.isprintable():
            raise _fail(BAD_GLOBAL, key=key, value=value)
        if re.fullmatch(r"repo[0-9]+-path", key):
            raise _fail(GLOBAL_PATH, key=key)
        if repo and re.match(r"repo[0-9]", key) and not key.startswith(f"{repo}-"):
            raise _fail(GLOBAL_OTHER_REPO, key=key, repo=repo)
        result[key] = value
    return result


def check_cluster_name(
    name: str, namespace: str, *, instance_name: str = "instance1", volume_repo: bool = True
) -> None:
    """PGO's naming rules for a new cluster; InvalidManifest says which one fails."""
    _cluster_ref(name, namespace)
    if instance_name != "" and not _full(DNS1123_LABEL_RE, instance_name, 63):
        raise _fail(BAD_INSTANCE, name=instance_name)
    if (n := len(name) + len(instance_name or "00")) > MAX_CLUSTER_AND_SET:
        raise _fail(TOO_LONG_WITH_SET, n=n)
    if (n := len(name)) > MAX_CLUSTER_FOR_RESTORE_JOB:
        raise _fail(TOO_LONG_FOR_RESTORE_JOB, n=n)
    if n > MAX_CLUSTER_WITH_REPO_HOST and volume_repo:
        raise _fail(TOO_LONG_WITH_REPO_HOST, n=n)


def _check_cluster(spec: ClusterSpec) -> None:
    volume_repo = any(not r.is_cloud for r in spec.repos)
    check_cluster_name(
        spec.name, spec.namespace, instance_name=spec.instance_name, volume_repo=volume_repo
    )
    if type(spec.postgres_version) is not int or not 11 <= spec.postgres_version <= 18:
        raise _fail(BAD_VERSION)
    if type(spec.replicas) is not int or spec.replicas < 1:
        raise _fail(BAD_REPLICAS)
    _quantity(spec.storage, "The storage size")
    if spec.image is not None and not _full(IMAGE_RE, spec.image):
        raise _fail(BAD_IMAGE, image=spec.image)
    for name in (spec.storage_class, spec.configuration_secret):
        if name is not None:
            _k8s_name(name)
    if not spec.repos:
        raise _fail(NO_REPOS)
    names = [r.name for r in spec.repos]
    for repo in spec.repos:
        _check_repo(repo)
        if names.count(repo.name) > 1:
            raise _fail(DUPLICATE_REPO, repo=repo.name)
    _global(spec.global_options)


def _trigger(value: object) -> str:
    if not _full(TRIGGER_RE, value, 63):
        raise _fail(BAD_TRIGGER, value=value)
    return str(value)


# -- pieces --------------------------------------------------------------------------------


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


def _job_fields(job: RestoreJob | None) -> dict[str, Any]:
    """resources/affinity/tolerations/priorityClassName of a restore Job, checked."""
    if job is None:
        return {}
    fields: dict[str, Any] = {}
    for section, pairs in (("requests", job.requests), ("limits", job.limits)):
        for kind, amount in pairs:
            if kind not in QUANTITY_RES:
                raise _fail(BAD_JOB, what="resource", value=kind)
            fields.setdefault("resources", {}).setdefault(section, {})[kind] = _quantity(
                amount, f"The {kind} amount", kind
            )
    for key, value in job.node_labels:
        if not _full(LABEL_KEY_RE, key, 317) or not _full(LABEL_VALUE_RE, value, 63):
            raise _fail(BAD_JOB, what="node label", value=f"{key}={value}")
    if job.node_labels:
        match = [{"key": k, "operator": "In", "values": [v]} for k, v in job.node_labels]
        terms = {"nodeSelectorTerms": [{"matchExpressions": match}]}
        fields["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}
        }
    if job.tolerations:
        fields["tolerations"] = [_toleration(t) for t in job.tolerations]
    if job.priority_class is not None:
        fields["priorityClassName"] = _k8s_name(job.priority_class)
    return fields


def _toleration(t: Toleration) -> dict[str, Any]:
    exists = t.operator == "Exists"
    if not (
        t.operator in ("Equal", "Exists")
        and t.effect in TAINT_EFFECTS
        and ((t.key == "" and exists) or _full(LABEL_KEY_RE, t.key, 317))
        and (t.value == "" if exists else _full(LABEL_VALUE_RE, t.value, 63))
        and (t.seconds is None or (t.effect == "NoExecute" and type(t.seconds) is int))
    ):
        raise _fail(BAD_JOB, what="toleration", value=t)
    body = {k: v for k, v in (("key", t.key), ("value", t.value), ("effect", t.effect)) if v}
    body["operator"] = t.operator
    return body if t.seconds is None else {**body, "tolerationSeconds": t.seconds}


def _cluster(spec: ClusterSpec, *, verbatim: str | None = None) -> dict[str, Any]:
    """The body of a new cluster. Cloud repos get the console's path unless given one; the
    repo named `verbatim` (a standby's) keeps its given path, or PGO's default."""
    _check_cluster(spec)
    global_ = _global(spec.global_options)
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
        raise _fail(SOURCE_BOTH)
    manifest = _cluster(target)
    taken = [PGO_DEFAULT_REPO_PATH.format(index=n) for n in range(1, 5)]
    entry: dict[str, Any]
    if source.cluster is not None:
        live = source.cluster
        namespace = live.cluster_namespace or target.namespace
        _cluster_ref(live.cluster_name, namespace, "source cluster name")
        if (live.cluster_name, namespace) == (target.name, target.namespace):
            raise _fail(CLONE_OF_ITSELF)
        _repo_index(live.repo_name)
        # Its known paths, and the directory of the console's paths for it.
        taken += [*map(_path, live.repo_paths), f"/pgbackrest/{namespace}/{live.cluster_name}"]
        entry = {"clusterName": live.cluster_name, "repoName": live.repo_name}
        if namespace != target.namespace:
            entry["clusterNamespace"] = namespace
        options, data_source = check_pgo_options(live.options), {"postgresCluster": entry}
    elif source.cloud is not None:
        cloud = source.cloud
        _check_repo(cloud.repo)
        if not cloud.repo.is_cloud:
            raise _fail(SOURCE_NOT_CLOUD)
        if not _full(DNS1123_SUBDOMAIN_RE, cloud.stanza, 253):
            raise _fail(BAD_GLOBAL, key="stanza", value=cloud.stanza)
        global_ = _global(cloud.global_options, repo=cloud.repo.name)
        if cloud.repo.path:
            global_[f"{cloud.repo.name}-path"] = cloud.repo.path
            taken.append(cloud.repo.path)
        entry = {"stanza": cloud.stanza}
        if cloud.configuration_secret:
            secret = {"name": _k8s_name(cloud.configuration_secret)}
            entry["configuration"] = [{"secret": secret}]
        entry.update({"global": dict(sorted(global_.items()))} if global_ else {})
        entry["repo"] = _repo_body(cloud.repo)
        options, data_source = check_pgo_options(cloud.options), {"pgbackrest": entry}
    else:
        raise _fail(SOURCE_NEITHER)
    own = manifest["spec"]["backups"]["pgbackrest"].get("global", {})
    for repo in target.repos:
        path = own.get(f"{repo.name}-path")
        if clash := next((t for t in taken if path and _overlaps(path, t)), None):
            raise _fail(REPO_PATH_CLASH, repo=repo.name, path=path, source=clash)
    entry.update({"options": options} if options else {})
    entry.update(_job_fields(target.restore_job))
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
        raise _fail(STANDBY_NEEDS_SOURCE)
    standby: dict[str, Any] = {"enabled": True}
    if repo_name is not None:
        if not any(r.name == repo_name and r.is_cloud for r in target.repos):
            raise _fail(STANDBY_REPO, repo=repo_name)
        standby["repoName"] = repo_name
    if host is not None:
        if not _full(DNS1123_SUBDOMAIN_RE, host, 253):
            try:
                ipaddress.ip_address(host)
            except ValueError as exc:
                raise _fail(BAD_HOST, host=host) from exc
        port = 5432 if port is None else port
        standby["host"] = host
    if port is not None:
        if type(port) is not int or not 1024 <= port <= 65535:
            raise _fail(BAD_PORT)
        standby["port"] = port
    manifest = _cluster(target, verbatim=repo_name)
    manifest["spec"]["standby"] = standby
    return manifest


# -- patches (JSON merge patches, RFC 7386) ------------------------------------------------


def data_source_clear_patch() -> dict[str, Any]:
    """Drop spec.dataSource once a clone is ready, so it can never re-clone (§10 H1)."""
    return {"spec": {"dataSource": None}}


def manual_backup_patch(repo: str, options: Sequence[str], trigger: str) -> dict[str, Any]:
    """spec.backups.pgbackrest.manual and its trigger annotation, in one patch (§3.1). The
    options go to pgBackRest as argv or space-joined (no shell): no spaces, no quotes."""
    _repo_index(repo)
    options = [options] if isinstance(options, str) else list(options)
    for option in options:
        forbidden = isinstance(option, str) and any(t in option for t in ("--repo=", "--stanza"))
        if forbidden or not _full(BACKUP_OPTION_RE, option, 200):
            raise _fail(BAD_BACKUP_OPTION, option=option)
    return {
        "metadata": {"annotations": {BACKUP_ANNOTATION: _trigger(trigger)}},
        "spec": {"backups": {"pgbackrest": {"manual": {"repoName": repo, "options": options}}}},
    }


def restore_in_place_patch(
    repo: str,
    options: Sequence[str],
    trigger: str,
    *,
    cluster_name: str | None = None,
    cluster_namespace: str | None = None,
    restore_job: RestoreJob | None = None,
) -> dict[str, Any]:
    """restore.enabled, its options and the trigger annotation in one patch (§3.6). Every
    restore field is set or cleared, and spec.dataSource is cleared (§10 H1(a))."""
    _repo_index(repo)
    if cluster_name is not None and not _full(DNS1035_LABEL_RE, cluster_name, 63):
        raise _fail(BAD_NAME, what="source cluster name", name=cluster_name)
    if cluster_namespace is not None and not _full(DNS1123_LABEL_RE, cluster_namespace, 63):
        raise _fail(BAD_NAMESPACE, name=cluster_namespace)
    restore = dict.fromkeys(("resources", "affinity", "tolerations", "priorityClassName"))
    restore.update(enabled=True, repoName=repo, options=check_pgo_options(options))
    restore.update(clusterName=cluster_name, clusterNamespace=cluster_namespace)
    restore.update(_job_fields(restore_job))
    return {
        "metadata": {"annotations": {RESTORE_ANNOTATION: _trigger(trigger)}},
        "spec": {"dataSource": None, "backups": {"pgbackrest": {"restore": restore}}},
    }


def restore_disable_patch(repo: str | None = None) -> dict[str, Any]:
    """restore.enabled=false after an in-place restore (§3.6; rather than deleting the
    section, pain point 7), clearing spec.dataSource too (§10 H1(a)). With `repo`, also
    valid where the restore section is gone (repoName is required; pgo-client #59)."""
    restore: dict[str, Any] = {"enabled": False}
    if repo is not None:
        _repo_index(repo)
        restore["repoName"] = repo
    return {"spec": {"dataSource": None, "backups": {"pgbackrest": {"restore": restore}}}}


def shutdown_patch(shutdown: bool) -> dict[str, Any]:
    """Stop (True) or start (False) a cluster (§3.8)."""
    if not isinstance(shutdown, bool):
        raise _fail(BAD_SHUTDOWN)
    return {"spec": {"shutdown": shutdown}}


def promote_patch() -> dict[str, Any]:
    """Promote a standby (§3.7). Shut the old primary down first."""
    return {"spec": {"standby": {"enabled": False}}}
