"""The clone wizard's review and submit, and the clone request an operation is rebuilt from.

`draft_submit` checks every step again (another operator may have changed the draft, the
window may have moved) and creates the clone operation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F

from restores import rules
from restores.models import CloneDraft, Cluster, Operation
from restores.models.requests import clone_request, restore_job_spec
from restores.platforms import manifests
from restores.platforms.base import ClonePlan, CloneRequest, PlatformError
from restores.platforms.restore_options import pgo_restore_options
from restores.platforms.targets import InvalidRestoreOptions, RestoreTarget
from restores.services import live
from restores.services.clones.cloud import (
    CLOUD_DB_UNCHECKED,
    CLOUD_UNCHECKED,
    CloudAnswers,
    check_cloud,
)
from restores.services.clones.drafts import (
    DRAFT_CHANGED,
    NAME_TAKEN,
    STEP_NOT_READY,
    TargetAnswers,
    _now,
    _require_open,
    check_source,
    check_target,
    draft_platform,
    draft_point,
    draft_verdict,
    require_draft_access,
)
from restores.services.errors import ServiceError
from restores.services.operations import operation_create


def draft_request(draft: CloneDraft, *, operation_id: str = "preview") -> CloneRequest:
    return clone_request(operation_id, _draft_params(draft))


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
        request = draft_request(draft)
        plan = live.ask(platform, "the dry run", lambda p: p.clone_plan(request))
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
    require_draft_access(draft, user)
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
