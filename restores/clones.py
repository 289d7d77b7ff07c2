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
    changed = draft.source_id != cluster.pk or draft.repo_name != repo_name
    fields: dict[str, Any] = {"source": cluster, "repo_name": repo_name}
    if changed:
        # A point picked on another repo's window means nothing here: ask again.
        fields.update(point={}, target={**draft.target, "db_include": []})
    _save(draft, reached=CloneDraft.Step.POINT if changed else _later("source"), **fields)


def draft_save_point(*, draft: CloneDraft, point: RestoreTarget, display: dict[str, Any]) -> None:
    """Store a point the repo's window can reach. `display` keeps what the user typed (date,
    clock, zone) so the form shows it back."""
    _require_open(draft)
    repo = draft_repo(draft)
    if repo is None:
        raise ServiceError(STEP_NOT_READY.format(step="source"))
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
    source = draft.source
    assert source is not None
    try:
        # The manifest builder owns PGO's naming rules (DNS-1035, name lengths).
        manifests.check_cluster_name(answers.name, answers.namespace)
    except PlatformError as exc:
        raise ServiceError(NAME_INVALID.format(problem=exc.message), field="name") from None
    if (answers.name, answers.namespace) == (source.name, source.namespace):
        raise ServiceError(NAME_SAME_AS_SOURCE.format(source=source.name), field="name")
    taken = Cluster.objects.filter(
        platform=source.platform, namespace=answers.namespace, name=answers.name
    ).exists()
    ref = ClusterRef(answers.namespace, answers.name)
    try:
        exists = taken or platforms.get(source.platform).cluster_exists(ref)
    except PlatformError as exc:  # a namespace the Kubernetes platform does not manage, or
        # the API did not answer: said on the form rather than as a server error
        field = "namespace" if isinstance(exc, PermanentError) else None
        raise ServiceError(exc.message, field=field) from None
    if exists:
        raise ServiceError(NAME_TAKEN.format(name=answers.name, namespace=answers.namespace),
                           field="name")
    if answers.db_include:
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
    source, point = draft.source, draft_point(draft)
    assert source is not None and point is not None
    t = draft.target
    return CloneRequest(
        operation_id=operation_id,
        source=ClusterRef(source.namespace, source.name),
        repo=draft.repo_name,
        target=ClusterRef(t["namespace"], t["name"]),
        point=point,
        db_include=tuple(t.get("db_include") or ()),
        process_max=t.get("process_max"),
        storage=t.get("storage") or "1Gi",
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
    assert source is not None
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
    verdict: rules.Verdict


def draft_review(draft: CloneDraft) -> Review:
    if draft.reached != CloneDraft.Step.REVIEW:
        raise ServiceError(STEP_NOT_READY.format(step=draft.reached))
    verdict = draft_verdict(draft)
    assert verdict is not None and draft.source is not None
    try:
        plan = platforms.get(draft.source.platform).clone_plan(draft_request(draft))
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
    return Review(plan, text, kubectl, verdict)


def draft_submit(
    *, draft: CloneDraft, version: int, user: AbstractBaseUser | AnonymousUser | None
) -> Operation:
    """Check every step again and start the clone."""
    _require_open(draft)
    if version != draft.version:
        raise ServiceError(DRAFT_CHANGED)
    source = draft.source
    point = draft_point(draft)
    if source is None or point is None or draft.reached != CloneDraft.Step.REVIEW:
        raise ServiceError(STEP_NOT_READY.format(step=draft.reached))
    check_source(source, draft.repo_name)
    verdict = draft_verdict(draft)
    if verdict is None or not verdict.ok:
        raise ServiceError(verdict.errors[0][1] if verdict else STEP_NOT_READY.format(
            step="point"))
    answers = TargetAnswers(**{**draft.target, "db_include": tuple(draft.target.get(
        "db_include") or ()), "restore_job": draft.target.get("restore_job") or {}})
    check_target(draft, answers)
    request = draft_request(draft)
    try:
        with transaction.atomic():
            target = Cluster.objects.create(
                platform=source.platform, namespace=answers.namespace, name=answers.name,
                role=Cluster.Role.UNKNOWN, pg_version=source.pg_version, state="restoring",
                state_message=f"Being restored from {source.name} ({draft.repo_name}).",
            )
            op = operation_create(
                cluster=target, kind=Operation.Kind.CLONE, user=user,
                params=_operation_params(draft, request),
                message=_request_message(source, answers, point),
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


def _operation_params(draft: CloneDraft, request: CloneRequest) -> dict[str, Any]:
    source = draft.source
    assert source is not None
    return {
        "source": {"platform": source.platform, "namespace": source.namespace,
                   "name": source.name},
        "repo": request.repo,
        "point": draft.point,
        "target": draft.target,
    }


def _request_message(source: Cluster, answers: TargetAnswers, point: RestoreTarget) -> str:
    where = {
        "latest": "the end of the archived WAL",
        "set": f"the end of backup set {point.label}",
        "immediate": f"the end of backup set {point.label or '(newest)'}",
        "time": f"{point.time.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if point.time else "",
        "lsn": f"LSN {point.lsn}",
        "xid": f"transaction {point.xid}",
        "name": f"restore point '{point.name}'",
    }[point.kind]
    return f"Clone of {source.name} into {answers.name} at {where} requested."


def operation_request(op: Operation) -> CloneRequest:
    """Rebuild the clone request an operation was created with."""
    params = op.params
    draft = CloneDraft(point=params["point"])
    point = draft_point(draft)
    assert point is not None
    t = params["target"]
    return CloneRequest(
        operation_id=op.refs["trigger"],
        source=ClusterRef(params["source"]["namespace"], params["source"]["name"]),
        repo=params["repo"],
        target=ClusterRef(t["namespace"], t["name"]),
        point=point,
        db_include=tuple(t.get("db_include") or ()),
        process_max=t.get("process_max"),
        storage=t.get("storage") or "1Gi",
        **_scheduling(t.get("restore_job") or {}),
    )

