"""The wizard's other source: a cloud repo that no live cluster uses (Kubernetes, PGO's
spec.dataSource.pgbackrest, §3.4). The console never sees its credentials: it names the
Secret that holds them."""

from __future__ import annotations

import dataclasses
from typing import Any

from restores import platforms
from restores.models import CloneDraft
from restores.models.requests import cloud_source
from restores.platforms import manifests
from restores.platforms.base import ClusterRef, PermanentError, PlatformError
from restores.services import access, live
from restores.services.clones.drafts import User, _later, _require_open, _save, require_draft_access
from restores.services.errors import ServiceError

CLOUD_NEEDS_KUBERNETES = (
    "A cloud repo with no live cluster is restored by PGO: enable the kubernetes platform "
    "(DR_PLATFORMS) to use it."
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
    "PostgreSQL version": "postgres_version", "repo name": "repo_name",
    "setting": "global_options", "credential": "global_options",
}


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
        live.ask("kubernetes", "may the console use the namespace",
                 lambda p: p.cluster_exists(ClusterRef(answers.namespace, "probe")))
    except PlatformError as exc:
        field = "namespace" if isinstance(exc, PermanentError) else None
        raise ServiceError(exc.message, field=field) from None
    return source


def draft_save_cloud_source(*, draft: CloneDraft, answers: CloudAnswers, user: User) -> None:
    _require_open(draft)
    require_draft_access(draft, user)
    access.require(user, "clone", platform="kubernetes", namespace=answers.namespace)
    check_cloud(answers)
    stored = {**dataclasses.asdict(answers),
              "global_options": [list(p) for p in answers.global_options]}
    changed = stored != draft.cloud
    fields: dict[str, Any] = {"source": None, "repo_name": answers.repo_name, "cloud": stored}
    if changed:
        fields.update(point={}, target={**draft.target, "db_include": [],
                                        "namespace": answers.namespace})
    _save(draft, reached=CloneDraft.Step.POINT if changed else _later("source"), **fields)
