"""Merge patches of an existing PostgresCluster: a manual backup, an in-place restore and its
clean-up, shutdown and start, promotion (§2, §3.6 to §3.8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..restore_options import check_pgo_options
from .specs import (
    BACKUP_ANNOTATION,
    BACKUP_OPTION_RE,
    BAD_BACKUP_OPTION,
    BAD_NAME,
    BAD_NAMESPACE,
    BAD_SHUTDOWN,
    DNS1035_LABEL_RE,
    DNS1123_LABEL_RE,
    RESTORE_ANNOTATION,
    RestoreJob,
    fail,
    full,
    job_fields,
    repo_index,
    trigger_value,
)


def data_source_clear_patch() -> dict[str, Any]:
    """Drop spec.dataSource once a clone is ready, so it can never re-clone (§10 H1)."""
    return {"spec": {"dataSource": None}}


def manual_backup_patch(repo: str, options: Sequence[str], trigger: str) -> dict[str, Any]:
    """spec.backups.pgbackrest.manual and its trigger annotation, in one patch (§3.1). The
    options go to pgBackRest as argv or space-joined (no shell): no spaces, no quotes."""
    repo_index(repo)
    options = [options] if isinstance(options, str) else list(options)
    for option in options:
        forbidden = isinstance(option, str) and any(t in option for t in ("--repo=", "--stanza"))
        if forbidden or not full(BACKUP_OPTION_RE, option, 200):
            raise fail(BAD_BACKUP_OPTION, option=option)
    return {
        "metadata": {"annotations": {BACKUP_ANNOTATION: trigger_value(trigger)}},
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
    repo_index(repo)
    if cluster_name is not None and not full(DNS1035_LABEL_RE, cluster_name, 63):
        raise fail(BAD_NAME, what="source cluster name", name=cluster_name)
    if cluster_namespace is not None and not full(DNS1123_LABEL_RE, cluster_namespace, 63):
        raise fail(BAD_NAMESPACE, name=cluster_namespace)
    restore = dict.fromkeys(("resources", "affinity", "tolerations", "priorityClassName"))
    restore.update(enabled=True, repoName=repo, options=check_pgo_options(options))
    restore.update(clusterName=cluster_name, clusterNamespace=cluster_namespace)
    restore.update(job_fields(restore_job))
    return {
        "metadata": {"annotations": {RESTORE_ANNOTATION: trigger_value(trigger)}},
        "spec": {"dataSource": None, "backups": {"pgbackrest": {"restore": restore}}},
    }


def restore_disable_patch(repo: str | None = None) -> dict[str, Any]:
    """restore.enabled=false after an in-place restore (§3.6; rather than deleting the
    section, pain point 7), clearing spec.dataSource too (§10 H1(a)). With `repo`, also
    valid where the restore section is gone (repoName is required; pgo-client #59)."""
    restore: dict[str, Any] = {"enabled": False}
    if repo is not None:
        repo_index(repo)
        restore["repoName"] = repo
    return {"spec": {"dataSource": None, "backups": {"pgbackrest": {"restore": restore}}}}


def shutdown_patch(shutdown: bool) -> dict[str, Any]:
    """Stop (True) or start (False) a cluster (§3.8)."""
    if not isinstance(shutdown, bool):
        raise fail(BAD_SHUTDOWN)
    return {"spec": {"shutdown": shutdown}}


def promote_patch() -> dict[str, Any]:
    """Promote a standby (§3.7). Shut the old primary down first."""
    return {"spec": {"standby": {"enabled": False}}}
