"""The clone / PITR wizard: a draft kept in the database, step by step, then one operation.

Each `draft_save_*` checks the step's rules and stores its answers; `draft_submit` checks them
all again (another operator may have changed the draft, the window may have moved) and
creates the clone operation. Messages are module constants; tests assert on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import platforms, rules
from .models import Backup, CloneDraft, Cluster, Operation, Repository
from .platforms import manifests
from .platforms.base import ClonePlan, CloneRequest, ClusterRef, PermanentError, PlatformError
from .platforms.restore_options import (
    InvalidRestoreOptions,
    RestoreTarget,
    pgo_restore_options,
)
from .services import ServiceError, operation_create

SOURCE_GONE = "{cluster} is no longer reported by its platform; pick another source."
SOURCE_NO_REPO = "{cluster} has no repo named {repo}."
SOURCE_NO_BACKUP = "{repo} of {cluster} has no backup yet: there is nothing to restore from."
NAME_SAME_AS_SOURCE = "The new cluster needs a name different from its source {source}."
NAME_TAKEN = "A cluster named {name} already exists in {namespace}; pick another name."
NAME_INVALID = "{problem}"
DB_NOT_IN_SET = "{name} is not a database of the backup set the restore starts from."
DB_INCLUDE_WARNING = (
    "Only the chosen databases are restored. The others come back as empty, unusable files "
    "and the console drops them after the restore."
)
CLOUD_NEEDS_KUBERNETES = (
    "A cloud repo with no live cluster is restored by PGO: enable the kubernetes platform "
    "(DR_PLATFORMS) to use it."
)
CLOUD_SAME_NAMESPACE = (
    "The clone goes in {namespace}, the namespace of the cloud source: PGO's restore Job reads "
    "the credentials Secret from the new cluster's namespace."
)
CLOUD_UNCHECKED = (
    "The console cannot read a cloud repo that no live cluster uses, so this point is not "
    "checked against the repo's backups. PGO does not check it either: a point outside the "
    "repo's window, a wrong path or stanza fail in the restore Job, and the console then "
    "reports the Job's failure."
)
CLOUD_DB_UNCHECKED = (
    "The console cannot list the databases of a repo it cannot read: a name that is not in "
    "the backup set makes the restore Job fail."
)
STEP_NOT_READY = "Finish the {step} step first."
DRAFT_SUBMITTED = "This draft was already submitted."
DRAFT_CHANGED = (
    "Someone changed this draft since you opened the review. Review it again, then submit."
)


def _now() -> dt.datetime:
    return timezone.now()


# --- reading a draft ------------------------------------------------------------------------


def draft_point(draft: CloneDraft) -> RestoreTarget | None:
    """The stored restore point, or None when the point step has not been answered."""
    data = draft.point
    if not data.get("kind"):
        return None
    return RestoreTarget(
        kind=data["kind"],
        time=dt.datetime.fromisoformat(data["time"]) if data.get("time") else None,
        lsn=data.get("lsn") or None,
        xid=int(data["xid"]) if data.get("xid") else None,
        name=data.get("name") or None,
        label=data.get("label") or None,
        exclusive=bool(data.get("exclusive")),
    )


def draft_repo(draft: CloneDraft) -> Repository | None:
    if draft.source is None:
        return None
    return draft.source.repositories.filter(name=draft.repo_name).first()


def draft_platform(draft: CloneDraft) -> str | None:
    """The platform the clone runs on: the source's, or Kubernetes for a cloud repo."""
    if draft.cloud:
        return "kubernetes"
    return draft.source.platform if draft.source is not None else None


def draft_ready_for_point(draft: CloneDraft) -> bool:
    return bool(draft.cloud) or draft_repo(draft) is not None


def repo_window(repo: Repository) -> rules.Window:
    backups = [
        rules.BackupPoint(b.label, b.stopped_at, b.lsn_stop, b.error)
        for b in repo.backups.order_by("stopped_at")
    ]
    return rules.Window(repo.name, repo.earliest_recovery, repo.latest_recovery,
                        repo.latest_wal, backups)


def point_verdict(repo: Repository, point: RestoreTarget) -> rules.Verdict:
    return rules.check_point(point, repo_window(repo), now=_now())


def draft_verdict(draft: CloneDraft) -> rules.Verdict | None:
    point, repo = draft_point(draft), draft_repo(draft)
    if point is None or repo is None:
        return None
    return rules.check_point(point, repo_window(repo), now=_now())


def _save(draft: CloneDraft, *, reached: str, **fields: Any) -> None:
    """Store answers; the furthest reachable step is the next one after the saved step."""
    fields["updated_at"] = _now()
    fields["reached"] = reached
    CloneDraft.objects.filter(pk=draft.pk).update(version=F("version") + 1, **fields)
    draft.refresh_from_db()


def _later(step: str) -> str:
    order = [s.value for s in CloneDraft.STEPS]
    return order[min(order.index(step) + 1, len(order) - 1)]


def _require_open(draft: CloneDraft) -> None:
    if draft.submitted:
        raise ServiceError(DRAFT_SUBMITTED)


# --- the steps --------------------------------------------------------------------------------


def draft_create(
    *, user: AbstractBaseUser | AnonymousUser | None, source: Cluster | None = None
) -> CloneDraft:
    created_by = user if user is not None and user.is_authenticated else None
    draft = CloneDraft.objects.create(created_by=created_by, source=source)
    if source is not None:
        repo = source.repositories.filter(backups__isnull=False).order_by("name").first()
        if repo is not None:
            draft.repo_name = repo.name
            draft.save(update_fields=["repo_name"])
    return draft


def check_source(cluster: Cluster, repo_name: str) -> Repository:
    if not cluster.present:
        raise ServiceError(SOURCE_GONE.format(cluster=cluster.name), field="source")
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None:
        raise ServiceError(SOURCE_NO_REPO.format(cluster=cluster.name, repo=repo_name),
                           field="repo")
    if not repo.backups.exists():
        raise ServiceError(SOURCE_NO_BACKUP.format(cluster=cluster.name, repo=repo_name),
                           field="repo")
    return repo


def draft_save_source(*, draft: CloneDraft, cluster: Cluster, repo_name: str) -> None:
    _require_open(draft)
    check_source(cluster, repo_name)
    changed = (draft.source_id != cluster.pk or draft.repo_name != repo_name
               or bool(draft.cloud))
    fields: dict[str, Any] = {"source": cluster, "repo_name": repo_name, "cloud": {}}
    if changed:
        # A point picked on another repo's window means nothing here: ask again.
        fields.update(point={}, target={**draft.target, "db_include": []})
    _save(draft, reached=CloneDraft.Step.POINT if changed else _later("source"), **fields)


@dataclasses.dataclass(frozen=True)
class CloudAnswers:
    """A cloud repo with no live cluster (PGO's spec.dataSource.pgbackrest, §3.4)."""

    namespace: str
    storage: str  # s3, gcs or azure
    bucket: str  # the Azure container
    postgres_version: int
    endpoint: str = ""  # S3 only
    region: str = ""  # S3 only
    path: str = ""  # the source's repo path; "" for PGO's default /pgbackrest/repoN
    repo_name: str = "repo1"
    stanza: str = "db"
    configuration_secret: str = ""
    global_options: tuple[tuple[str, str], ...] = ()
    backups_to_cloud: bool = False


CLOUD_FIELDS = {  # a builder message naming one of these belongs next to that field
    "bucket": "bucket", "container": "bucket", "endpoint": "endpoint", "region": "region",
    "repo path": "path", "'stanza'": "stanza", "Kubernetes object name": "configuration_secret",
    "PostgreSQL version": "postgres_version", "repo name": "repo_name", "setting": "global",
}


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


def check_cloud(answers: CloudAnswers) -> manifests.CloudSource:
    """The cloud source, checked by the manifest builder and the API server's rules for the
    namespace; ServiceError next to the field at fault."""
    if "kubernetes" not in platforms.enabled():
        raise ServiceError(CLOUD_NEEDS_KUBERNETES, field="storage")
    source = cloud_source(dataclasses.asdict(answers))
    probe = manifests.ClusterSpec(
        name="probe", namespace=answers.namespace, postgres_version=answers.postgres_version,
        repos=(manifests.RepoSpec("repo1", volume_size="1Gi"),),
    )
    try:
        manifests.check_cluster_name("probe", answers.namespace)
        manifests.clone_manifest(probe, manifests.CloneSource(cloud=source))
    except PlatformError as exc:
        field = next((f for key, f in CLOUD_FIELDS.items() if key in exc.message), None)
        if "namespace" in exc.message:
            field = "namespace"
        raise ServiceError(exc.message, field=field) from None
    try:
        platforms.get("kubernetes").cluster_exists(ClusterRef(answers.namespace, "probe"))
    except PlatformError as exc:
        field = "namespace" if isinstance(exc, PermanentError) else None
        raise ServiceError(exc.message, field=field) from None
    return source


def draft_save_cloud_source(*, draft: CloneDraft, answers: CloudAnswers) -> None:
    _require_open(draft)
    check_cloud(answers)
    stored = {**dataclasses.asdict(answers),
              "global_options": [list(p) for p in answers.global_options]}
    changed = stored != draft.cloud
    fields: dict[str, Any] = {"source": None, "repo_name": answers.repo_name, "cloud": stored}
    if changed:
        fields.update(point={}, target={**draft.target, "db_include": [],
                                        "namespace": answers.namespace})
    _save(draft, reached=CloneDraft.Step.POINT if changed else _later("source"), **fields)


def draft_save_point(*, draft: CloneDraft, point: RestoreTarget, display: dict[str, Any]) -> None:
    """Store a point the repo's window can reach (a cloud repo's window is unknown: the
    point is only checked for shape). `display` keeps what the user typed (date, clock,
    zone) so the form shows it back."""
    _require_open(draft)
    repo = draft_repo(draft)
    if repo is None and not draft.cloud:
        raise ServiceError(STEP_NOT_READY.format(step="source"))
    if repo is not None:
        verdict = rules.check_point(point, repo_window(repo), now=_now())
        if not verdict.ok:
            field, message = verdict.errors[0]
            raise ServiceError(message, field=field)
    stored = {
        **display,
        "kind": point.kind,
        "time": point.time.isoformat() if point.time else "",
        "lsn": point.lsn or "",
        "xid": str(point.xid) if point.xid else "",
        "name": point.name or "",
        "label": point.label or "",
        "exclusive": point.exclusive,
    }
    _save(draft, reached=_later("point"), point=stored)


@dataclasses.dataclass(frozen=True)
class TargetAnswers:
    name: str
    namespace: str
    storage: str = "1Gi"
    process_max: int | None = None
    db_include: tuple[str, ...] = ()
    # Kubernetes only: {"requests": [[cpu|memory, qty]], "limits": [...],
    # "node_labels": [[key, value]], "toleration": "key=value:Effect"}
    restore_job: dict[str, Any] = dataclasses.field(default_factory=dict)


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


def base_backup(draft: CloneDraft) -> Backup | None:
    """The backup set the restore starts from, as the window rules pick it."""
    verdict, repo = draft_verdict(draft), draft_repo(draft)
    if verdict is None or repo is None or not verdict.base:
        return None
    return repo.backups.filter(label=verdict.base).first()


def check_target(draft: CloneDraft, answers: TargetAnswers) -> None:
    source, platform = draft.source, draft_platform(draft)
    assert platform is not None
    try:
        # The manifest builder owns PGO's naming rules (DNS-1035, name lengths).
        manifests.check_cluster_name(answers.name, answers.namespace)
    except PlatformError as exc:
        raise ServiceError(NAME_INVALID.format(problem=exc.message), field="name") from None
    if source is not None and (answers.name, answers.namespace) == (source.name,
                                                                     source.namespace):
        raise ServiceError(NAME_SAME_AS_SOURCE.format(source=source.name), field="name")
    if draft.cloud and answers.namespace != draft.cloud["namespace"]:
        raise ServiceError(CLOUD_SAME_NAMESPACE.format(namespace=draft.cloud["namespace"]),
                           field="namespace")
    taken = Cluster.objects.filter(
        platform=platform, namespace=answers.namespace, name=answers.name
    ).exists()
    ref = ClusterRef(answers.namespace, answers.name)
    try:
        exists = taken or platforms.get(platform).cluster_exists(ref)
    except PlatformError as exc:  # a namespace the Kubernetes platform does not manage, or
        # the API did not answer: said on the form rather than as a server error
        field = "namespace" if isinstance(exc, PermanentError) else None
        raise ServiceError(exc.message, field=field) from None
    if exists:
        raise ServiceError(NAME_TAKEN.format(name=answers.name, namespace=answers.namespace),
                           field="name")
    if answers.db_include and draft.cloud:
        try:  # only the shape of the names can be checked
            pgo_restore_options(RestoreTarget(), now=_now(), db_include=answers.db_include)
        except InvalidRestoreOptions as exc:
            raise ServiceError(exc.message, field="db_include") from None
    elif answers.db_include:
        backup = base_backup(draft)
        known = set(backup.databases or []) if backup else set()
        for name in answers.db_include:
            if name not in known:
                raise ServiceError(DB_NOT_IN_SET.format(name=name), field="db_include")


def draft_save_target(*, draft: CloneDraft, answers: TargetAnswers) -> None:
    _require_open(draft)
    if draft_point(draft) is None:
        raise ServiceError(STEP_NOT_READY.format(step="point"))
    check_target(draft, answers)
    _save(draft, reached=CloneDraft.Step.REVIEW, target=dataclasses.asdict(answers))


# --- review and submit ------------------------------------------------------------------------


def draft_request(draft: CloneDraft, *, operation_id: str = "preview") -> CloneRequest:
    return _request(operation_id, _draft_params(draft))


def _draft_params(draft: CloneDraft) -> dict[str, Any]:
    """What an operation keeps of a draft: enough to rebuild its request."""
    source = draft.source
    if draft.cloud:
        origin: dict[str, Any] = {"platform": "kubernetes", "cloud": draft.cloud}
    else:
        assert source is not None
        origin = {"platform": source.platform, "namespace": source.namespace,
                  "name": source.name}
    return {"source": origin, "repo": draft.repo_name, "point": draft.point,
            "target": draft.target}


def _request(operation_id: str, params: dict[str, Any]) -> CloneRequest:
    point = draft_point(CloneDraft(point=params["point"]))
    assert point is not None
    t, origin = params["target"], params["source"]
    cloud = origin.get("cloud")
    return CloneRequest(
        operation_id=operation_id,
        source=None if cloud else ClusterRef(origin["namespace"], origin["name"]),
        repo=params["repo"],
        target=ClusterRef(t["namespace"], t["name"]),
        point=point,
        db_include=tuple(t.get("db_include") or ()),
        process_max=t.get("process_max"),
        storage=t.get("storage") or "1Gi",
        cloud=cloud_source(cloud) if cloud else None,
        postgres_version=int(cloud["postgres_version"]) if cloud else None,
        backups_to_cloud=bool(cloud and cloud.get("backups_to_cloud")),
        **_scheduling(t.get("restore_job") or {}),
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


def pgo_manifest(draft: CloneDraft) -> dict[str, Any]:
    """The PostgresCluster a DBA would apply with PGO for the same clone (§3.3, §3.5)."""
    req = draft_request(draft)
    source = draft.source
    assert source is not None  # a cloud clone runs on Kubernetes, whose plan has the body
    options = pgo_restore_options(req.point, now=_now(), db_include=req.db_include,
                                  process_max=req.process_max)
    spec = manifests.ClusterSpec(
        name=req.target.name,
        namespace=req.target.namespace,
        postgres_version=int((source.pg_version or "15").split(".")[0]),
        repos=(manifests.RepoSpec("repo1", volume_size=req.storage),),
        storage=req.storage,
        restore_job=restore_job_spec(draft.target.get("restore_job") or {}),
    )
    live = manifests.LiveSource(
        cluster_name=source.name,
        repo_name=req.repo,
        cluster_namespace=source.namespace if source.namespace != req.target.namespace else None,
        options=tuple(options),
    )
    return manifests.clone_manifest(spec, manifests.CloneSource(cluster=live))


@dataclasses.dataclass(frozen=True)
class Review:
    plan: ClonePlan
    manifest_yaml: str
    kubectl: tuple[str, ...]
    verdict: rules.Verdict | None  # None: a cloud repo, whose window the console cannot read
    warnings: tuple[str, ...] = ()


def draft_review(draft: CloneDraft) -> Review:
    if draft.reached != CloneDraft.Step.REVIEW:
        raise ServiceError(STEP_NOT_READY.format(step=draft.reached))
    verdict, platform = draft_verdict(draft), draft_platform(draft)
    assert platform is not None and (verdict is not None or draft.cloud)
    warnings = (CLOUD_UNCHECKED,) if draft.cloud else ()
    if draft.cloud and draft.target.get("db_include"):
        warnings += (CLOUD_DB_UNCHECKED,)
    try:
        plan = platforms.get(platform).clone_plan(draft_request(draft))
        # On Kubernetes the plan carries the exact body the platform will create.
        manifest = plan.manifest or pgo_manifest(draft)
    except (PlatformError, InvalidRestoreOptions) as exc:
        raise ServiceError(exc.message) from None
    text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
    ns, name = draft.target["namespace"], draft.target["name"]
    kubectl = plan.kubectl or (
        f"kubectl apply --server-side --field-manager=dr-console -f {name}.yaml",
        f"kubectl -n {ns} get postgrescluster {name} -o jsonpath='{{.status.conditions}}'",
        f"kubectl -n {ns} patch postgrescluster {name} --type=json "
        "-p '[{\"op\": \"remove\", \"path\": \"/spec/dataSource\"}]'",
    )
    return Review(plan, text, kubectl, verdict, warnings)


def draft_submit(
    *, draft: CloneDraft, version: int, user: AbstractBaseUser | AnonymousUser | None
) -> Operation:
    """Check every step again and start the clone."""
    _require_open(draft)
    if version != draft.version:
        raise ServiceError(DRAFT_CHANGED)
    source, point, platform = draft.source, draft_point(draft), draft_platform(draft)
    if platform is None or point is None or draft.reached != CloneDraft.Step.REVIEW:
        raise ServiceError(STEP_NOT_READY.format(step=draft.reached))
    if draft.cloud:
        check_cloud(CloudAnswers(**{**draft.cloud, "global_options": tuple(
            tuple(p) for p in draft.cloud.get("global_options") or ())}))
    else:
        assert source is not None
        check_source(source, draft.repo_name)
        verdict = draft_verdict(draft)
        if verdict is None or not verdict.ok:
            raise ServiceError(verdict.errors[0][1] if verdict else STEP_NOT_READY.format(
                step="point"))
    answers = TargetAnswers(**{**draft.target, "db_include": tuple(draft.target.get(
        "db_include") or ()), "restore_job": draft.target.get("restore_job") or {}})
    check_target(draft, answers)
    request = draft_request(draft)
    pg_version = (str(draft.cloud["postgres_version"]) if draft.cloud
                  else source.pg_version if source else "")
    try:
        with transaction.atomic():
            target = Cluster.objects.create(
                platform=platform, namespace=answers.namespace, name=answers.name,
                role=Cluster.Role.UNKNOWN, pg_version=pg_version, state="restoring",
                state_message=f"Being restored from {request.origin}.",
            )
            op = operation_create(
                cluster=target, kind=Operation.Kind.CLONE, user=user,
                params=_draft_params(draft),
                message=_request_message(request, answers, point),
            )
            updated = CloneDraft.objects.filter(
                pk=draft.pk, version=version, operation__isnull=True
            ).update(operation=op, version=F("version") + 1, updated_at=_now())
            if not updated:
                raise ServiceError(DRAFT_CHANGED)
    except IntegrityError:
        raise ServiceError(NAME_TAKEN.format(name=answers.name, namespace=answers.namespace),
                           field="name") from None
    return op


def _request_message(request: CloneRequest, answers: TargetAnswers, point: RestoreTarget) -> str:
    where = {
        "latest": "the end of the archived WAL",
        "set": f"the end of backup set {point.label}",
        "immediate": f"the end of backup set {point.label or '(newest)'}",
        "time": f"{point.time.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if point.time else "",
        "lsn": f"LSN {point.lsn}",
        "xid": f"transaction {point.xid}",
        "name": f"restore point '{point.name}'",
    }[point.kind]
    origin = request.source.name if request.source else request.origin
    return f"Clone of {origin} into {answers.name} at {where} requested."


def operation_request(op: Operation) -> CloneRequest:
    """Rebuild the clone request an operation was created with."""
    return _request(op.refs["trigger"], op.params)
