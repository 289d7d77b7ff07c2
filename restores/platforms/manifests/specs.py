"""What the PGO builders take, and the checks every body and patch share: the PGO API's
names, Kubernetes' naming rules, the input dataclasses (repos, sources, the cluster), and the
validators that refuse bad input with InvalidManifest."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..errors import PermanentError
from ..secrets import is_credential

# The PostgresCluster API (PGO v5).
GROUP = "postgres-operator.crunchydata.com"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PostgresCluster"
# Kubernetes' name rules (apimachinery validation), which PGO's names follow.
DNS1035_LABEL_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?", re.ASCII)
DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII
)

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


def fail(message: str, **values: object) -> InvalidManifest:
    return InvalidManifest(message.format(**values))


def full(pattern: re.Pattern[str], text: object, limit: int = 1000) -> bool:
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


def quantity(value: object, what: str, kind: str = "memory") -> str:
    if not full(QUANTITY_RES[kind], value, 32) or not any(c in "123456789" for c in str(value)):
        raise fail(BAD_QUANTITY, what=what, value=value)
    return str(value)


def k8s_name(name: object) -> str:
    if not full(DNS1123_SUBDOMAIN_RE, name, 253):
        raise fail(BAD_K8S_NAME, name=name)
    return str(name)


def check_ref(name: object, namespace: object, what: str = "cluster name") -> None:
    if not full(DNS1035_LABEL_RE, name, 63):
        raise fail(BAD_NAME, what=what, name=name)
    if not full(DNS1123_LABEL_RE, namespace, 63):
        raise fail(BAD_NAMESPACE, name=namespace)


def checked_path(path: object) -> str:
    if not full(PATH_RE, path) or any(part in (".", "..") for part in str(path).split("/")):
        raise fail(BAD_PATH, path=path)
    return str(path)


def repo_index(name: object) -> str:
    match = REPO_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise fail(BAD_REPO, repo=name)
    return match.group(1)


def check_repo(repo: RepoSpec) -> None:
    repo_index(repo.name)
    if sum(x is not None for x in (repo.volume_size, repo.s3, repo.gcs, repo.azure)) != 1:
        raise fail(REPO_STORAGE, repo=repo.name)
    if repo.volume_size is not None:
        quantity(repo.volume_size, "The repo size")
    if repo.storage_class is not None:
        k8s_name(repo.storage_class)
    if repo.path is not None and not repo.is_cloud:
        raise fail(VOLUME_PATH, repo=repo.name)
    if repo.path is not None:
        checked_path(repo.path)
    checks = [("bucket", BUCKET_RE, x.bucket) for x in (repo.s3, repo.gcs) if x]
    if repo.s3:
        checks += [
            ("endpoint", ENDPOINT_RE, repo.s3.endpoint),
            ("region", REGION_RE, repo.s3.region),
        ]
    if repo.azure:
        checks = [("container", BUCKET_RE, repo.azure.container)]
    for what, pattern, value in checks:
        if not full(pattern, value, 255):
            raise fail(BAD_CLOUD, what=what, value=value, repo=repo.name)


def global_settings(options: tuple[tuple[str, str], ...],
                    repo: str | None = None) -> dict[str, str]:
    """Checked `global` settings; `repo` (a data source's) restricts repoN- keys to it."""
    result = {}
    for key, value in options:
        if isinstance(key, str) and is_credential(key):  # before any message shows the value
            raise fail(GLOBAL_CREDENTIAL, key=key)
        if not full(GLOBAL_KEY_RE, key) or not isinstance(value, str) or not value.isprintable():
            raise fail(BAD_GLOBAL, key=key, value=value)
        if re.fullmatch(r"repo[0-9]+-path", key):
            raise fail(GLOBAL_PATH, key=key)
        if repo and re.match(r"repo[0-9]", key) and not key.startswith(f"{repo}-"):
            raise fail(GLOBAL_OTHER_REPO, key=key, repo=repo)
        result[key] = value
    return result


def check_cluster_name(
    name: str, namespace: str, *, instance_name: str = "instance1", volume_repo: bool = True
) -> None:
    """PGO's naming rules for a new cluster; InvalidManifest says which one fails."""
    check_ref(name, namespace)
    if instance_name != "" and not full(DNS1123_LABEL_RE, instance_name, 63):
        raise fail(BAD_INSTANCE, name=instance_name)
    if (n := len(name) + len(instance_name or "00")) > MAX_CLUSTER_AND_SET:
        raise fail(TOO_LONG_WITH_SET, n=n)
    if (n := len(name)) > MAX_CLUSTER_FOR_RESTORE_JOB:
        raise fail(TOO_LONG_FOR_RESTORE_JOB, n=n)
    if n > MAX_CLUSTER_WITH_REPO_HOST and volume_repo:
        raise fail(TOO_LONG_WITH_REPO_HOST, n=n)


def check_cluster(spec: ClusterSpec) -> None:
    volume_repo = any(not r.is_cloud for r in spec.repos)
    check_cluster_name(
        spec.name, spec.namespace, instance_name=spec.instance_name, volume_repo=volume_repo
    )
    if type(spec.postgres_version) is not int or not 11 <= spec.postgres_version <= 18:
        raise fail(BAD_VERSION)
    if type(spec.replicas) is not int or spec.replicas < 1:
        raise fail(BAD_REPLICAS)
    quantity(spec.storage, "The storage size")
    if spec.image is not None and not full(IMAGE_RE, spec.image):
        raise fail(BAD_IMAGE, image=spec.image)
    for name in (spec.storage_class, spec.configuration_secret):
        if name is not None:
            k8s_name(name)
    if not spec.repos:
        raise fail(NO_REPOS)
    names = [r.name for r in spec.repos]
    for repo in spec.repos:
        check_repo(repo)
        if names.count(repo.name) > 1:
            raise fail(DUPLICATE_REPO, repo=repo.name)
    global_settings(spec.global_options)


def trigger_value(value: object) -> str:
    if not full(TRIGGER_RE, value, 63):
        raise fail(BAD_TRIGGER, value=value)
    return str(value)


# -- pieces --------------------------------------------------------------------------------


def job_fields(job: RestoreJob | None) -> dict[str, Any]:
    """resources/affinity/tolerations/priorityClassName of a restore Job, checked."""
    if job is None:
        return {}
    fields: dict[str, Any] = {}
    for section, pairs in (("requests", job.requests), ("limits", job.limits)):
        for kind, amount in pairs:
            if kind not in QUANTITY_RES:
                raise fail(BAD_JOB, what="resource", value=kind)
            fields.setdefault("resources", {}).setdefault(section, {})[kind] = quantity(
                amount, f"The {kind} amount", kind
            )
    for key, value in job.node_labels:
        if not full(LABEL_KEY_RE, key, 317) or not full(LABEL_VALUE_RE, value, 63):
            raise fail(BAD_JOB, what="node label", value=f"{key}={value}")
    if job.node_labels:
        match = [{"key": k, "operator": "In", "values": [v]} for k, v in job.node_labels]
        terms = {"nodeSelectorTerms": [{"matchExpressions": match}]}
        fields["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}
        }
    if job.tolerations:
        fields["tolerations"] = [toleration_body(t) for t in job.tolerations]
    if job.priority_class is not None:
        fields["priorityClassName"] = k8s_name(job.priority_class)
    return fields


def toleration_body(t: Toleration) -> dict[str, Any]:
    exists = t.operator == "Exists"
    if not (
        t.operator in ("Equal", "Exists")
        and t.effect in TAINT_EFFECTS
        and ((t.key == "" and exists) or full(LABEL_KEY_RE, t.key, 317))
        and (t.value == "" if exists else full(LABEL_VALUE_RE, t.value, 63))
        and (t.seconds is None or (t.effect == "NoExecute" and type(t.seconds) is int))
    ):
        raise fail(BAD_JOB, what="toleration", value=t)
    body = {k: v for k, v in (("key", t.key), ("value", t.value), ("effect", t.effect)) if v}
    body["operator"] = t.operator
    return body if t.seconds is None else {**body, "tolerationSeconds": t.seconds}
