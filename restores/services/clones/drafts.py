"""The clone / PITR wizard's draft, step by step: the source, the point, the new cluster.

Each `draft_save_*` checks the step's rules and stores its answers. Messages are module
constants; tests assert on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F
from django.utils import timezone

from restores import platforms, rules
from restores.models import Backup, CloneDraft, Cluster, Repository
from restores.models.requests import repo_window
from restores.platforms import manifests
from restores.platforms.base import ClusterRef, PermanentError, PlatformError
from restores.platforms.restore_options import pgo_restore_options
from restores.platforms.targets import (
    InvalidRestoreOptions,
    RestoreTarget,
    target_from_json,
    target_to_json,
)
from restores.services import access, live
from restores.services.errors import ServiceError

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
CLOUD_SAME_NAMESPACE = (
    "The clone goes in {namespace}, the namespace of the cloud source: PGO's restore Job reads "
    "the credentials Secret from the new cluster's namespace."
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
    return target_from_json(draft.point) if draft.point.get("kind") else None


def draft_repo(draft: CloneDraft) -> Repository | None:
    if draft.source is None:
        return None
    return draft.source.repositories.filter(name=draft.repo_name).first()


def draft_platform(draft: CloneDraft) -> str | None:
    """The platform the clone runs on: the source's, or Kubernetes for a cloud repo."""
    if draft.cloud:
        return "kubernetes"
    return draft.source.platform if draft.source is not None else None


def cloud_source_enabled() -> bool:
    """A cloud repo with no live cluster is restored by PGO: offered with Kubernetes only."""
    return "kubernetes" in platforms.enabled()


def target_form_options(draft: CloneDraft, backup: Backup | None) -> dict[str, Any]:
    """What the target step's form offers: the base set's databases, a namespace fixed where
    there is no choice, the Kubernetes fields, and the platform's bound on parallelism."""
    platform_name = draft_platform(draft)
    assert platform_name is not None
    namespace = draft.source.namespace if draft.source else draft.cloud["namespace"]
    return {
        "databases": backup.databases if backup else None,
        # local: one namespace; a cloud source: the Secret's namespace
        "namespace_fixed": namespace if platform_name == "local" or draft.cloud else None,
        "kubernetes": platform_name == "kubernetes",
        "process_max_limit": platforms.get(platform_name).process_max_limit,
        "typed_databases": bool(draft.cloud),
    }


def draft_ready_for_point(draft: CloneDraft) -> bool:
    return bool(draft.cloud) or draft_repo(draft) is not None


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


User = AbstractBaseUser | AnonymousUser | None


def require_draft_access(draft: CloneDraft, user: User) -> None:
    """AccessDenied unless `user` may clone from the draft's source (a live cluster, or the
    namespace of a cloud repo); a draft with no source yet needs the operator role
    somewhere."""
    if draft.source is not None:
        access.require_cluster(user, "clone", draft.source)
    elif draft.cloud:
        access.require(user, "clone", platform="kubernetes", namespace=draft.cloud["namespace"])
    else:
        access.require_somewhere(user, "clone")


# --- the steps --------------------------------------------------------------------------------


def draft_create(
    *, user: AbstractBaseUser | AnonymousUser | None, source: Cluster | None = None
) -> CloneDraft:
    if source is not None:
        access.require_cluster(user, "clone", source)
    else:
        access.require_somewhere(user, "clone")
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


def draft_save_source(*, draft: CloneDraft, cluster: Cluster, repo_name: str,
                      user: User) -> None:
    _require_open(draft)
    require_draft_access(draft, user)
    access.require_cluster(user, "clone", cluster)
    check_source(cluster, repo_name)
    changed = (draft.source_id != cluster.pk or draft.repo_name != repo_name
               or bool(draft.cloud))
    fields: dict[str, Any] = {"source": cluster, "repo_name": repo_name, "cloud": {}}
    if changed:
        # A point picked on another repo's window means nothing here: ask again.
        fields.update(point={}, target={**draft.target, "db_include": []})
    _save(draft, reached=CloneDraft.Step.POINT if changed else _later("source"), **fields)


def draft_save_point(*, draft: CloneDraft, point: RestoreTarget, display: dict[str, Any],
                     user: User) -> None:
    """Store a point the repo's window can reach (a cloud repo's window is unknown: the
    point is only checked for shape). `display` keeps what the user typed (date, clock,
    zone) so the form shows it back."""
    _require_open(draft)
    require_draft_access(draft, user)
    repo = draft_repo(draft)
    if repo is None and not draft.cloud:
        raise ServiceError(STEP_NOT_READY.format(step="source"))
    if repo is not None:
        verdict = rules.check_point(point, repo_window(repo), now=_now())
        if not verdict.ok:
            field, message = verdict.errors[0]
            raise ServiceError(message, field=field)
    stored = {**display, **target_to_json(point)}
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
        exists = taken or live.ask(platform, "is the name free",
                                   lambda p: p.cluster_exists(ref))
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


def draft_save_target(*, draft: CloneDraft, answers: TargetAnswers, user: User) -> None:
    _require_open(draft)
    require_draft_access(draft, user)
    platform = draft_platform(draft)
    if platform is not None:
        access.require(user, "clone", platform=platform, namespace=answers.namespace)
    if draft_point(draft) is None:
        raise ServiceError(STEP_NOT_READY.format(step="point"))
    check_target(draft, answers)
    _save(draft, reached=CloneDraft.Step.REVIEW, target=dataclasses.asdict(answers))

