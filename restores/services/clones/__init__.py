"""The clone / PITR wizard: a draft kept in the database, step by step, then one operation.

drafts.py: reading a draft and saving its steps (a live source, the point, the new
cluster); cloud.py: the other source, a cloud repo with no live cluster; submit.py: the
review, the submit, and the clone request an operation is rebuilt from.
"""

from restores.platforms.targets import RestoreTarget
from restores.services.clones.cloud import (
    CLOUD_DB_UNCHECKED,
    CLOUD_FIELDS,
    CLOUD_NEEDS_KUBERNETES,
    CLOUD_UNCHECKED,
    CloudAnswers,
    check_cloud,
    draft_save_cloud_source,
)
from restores.services.clones.drafts import (
    CLOUD_SAME_NAMESPACE,
    DB_INCLUDE_WARNING,
    DB_NOT_IN_SET,
    DRAFT_CHANGED,
    DRAFT_SUBMITTED,
    NAME_INVALID,
    NAME_SAME_AS_SOURCE,
    NAME_TAKEN,
    SOURCE_GONE,
    SOURCE_NO_BACKUP,
    SOURCE_NO_REPO,
    STEP_NOT_READY,
    TargetAnswers,
    base_backup,
    check_source,
    check_target,
    draft_create,
    draft_platform,
    draft_point,
    draft_ready_for_point,
    draft_repo,
    draft_save_point,
    draft_save_source,
    draft_save_target,
    draft_verdict,
    point_verdict,
    require_draft_access,
)
from restores.services.clones.submit import (
    Review,
    draft_request,
    draft_review,
    draft_submit,
    pgo_manifest,
)
from restores.services.errors import ServiceError

__all__ = [
    "CLOUD_DB_UNCHECKED", "CLOUD_FIELDS", "CLOUD_NEEDS_KUBERNETES", "CLOUD_SAME_NAMESPACE",
    "CLOUD_UNCHECKED", "DB_INCLUDE_WARNING", "DB_NOT_IN_SET", "DRAFT_CHANGED", "DRAFT_SUBMITTED",
    "NAME_INVALID", "NAME_SAME_AS_SOURCE", "NAME_TAKEN", "SOURCE_GONE", "SOURCE_NO_BACKUP",
    "SOURCE_NO_REPO", "STEP_NOT_READY", "CloudAnswers", "RestoreTarget", "Review", "ServiceError",
    "TargetAnswers", "base_backup", "check_cloud", "check_source", "check_target",
    "draft_create", "draft_platform", "draft_point", "draft_ready_for_point",
    "draft_repo", "draft_request", "draft_review", "draft_save_cloud_source",
    "draft_save_point", "draft_save_source", "draft_save_target", "draft_submit",
    "draft_verdict", "pgo_manifest", "point_verdict",
    "require_draft_access",
]

