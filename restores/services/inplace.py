"""In-place restores, of the whole cluster or of some databases (--db-include): refused on
a standby, for a point the repo cannot reach, or for a database the backup set does not
hold; by default the current state is backed up first."""

from __future__ import annotations

from django.utils import timezone

from restores import rules
from restores.models import Backup, Cluster, Operation
from restores.models.requests import repo_window
from restores.platforms.targets import RestoreTarget, target_to_json
from restores.services import access
from restores.services.errors import ServiceError
from restores.services.operations import User, operation_create, require_present

REPO_EMPTY = "{cluster} has no backup in {repo}: there is nothing to restore from."


RESTORE_ON_STANDBY = (
    "{cluster} is a standby: it follows its primary's repo. Promote it first, or restore the "
    "primary."
)


RESTORE_NEEDS_CONFIRMATION = (
    "Type the cluster's name, {cluster}, to confirm: an in-place restore overwrites its data."
)


DB_NOT_IN_SET = (
    "{name} is not a database of backup set {label}, which this restore starts from. "
    "It holds: {known}."
)


DB_SET_UNREAD = (
    "The console has not read which databases backup set {label} holds yet: reload this "
    "page in a moment, then choose from the list."
)


def restore_in_place_request(
    *, cluster: Cluster, repo_name: str, point: RestoreTarget, user: User, confirm: str,
    db_include: tuple[str, ...] = (), process_max: int | None = None,
    safety_backup: bool = True,
) -> Operation:
    """Restore `cluster` over itself to `point` (or only `db_include`). `safety_backup`: take
    a backup of the current state first, so the restore can itself be undone."""
    kind = Operation.Kind.RESTORE_DATABASE if db_include else Operation.Kind.RESTORE_IN_PLACE
    access.require_cluster(user, access.KIND_ACTION[kind], cluster)
    require_present(cluster)
    if confirm != cluster.name:
        raise ServiceError(RESTORE_NEEDS_CONFIRMATION.format(cluster=cluster.name),
                           field="confirm")
    if cluster.role == Cluster.Role.STANDBY:
        raise ServiceError(RESTORE_ON_STANDBY.format(cluster=cluster.name))
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None or not repo.backups.exists():
        raise ServiceError(REPO_EMPTY.format(cluster=cluster.name, repo=repo_name), field="repo")
    verdict = rules.check_point(point, repo_window(repo), now=timezone.now())
    if not verdict.ok:
        field, message = verdict.errors[0]
        raise ServiceError(message, field=field)
    if db_include:
        check_databases(repo.backups.filter(label=verdict.base).first(), db_include)
    only = f" (only {', '.join(db_include)})" if db_include else ""
    safety = "" if safety_backup else " Without a backup of the current state first, as asked."
    return operation_create(
        cluster=cluster, kind=kind, user=user,
        params={"repo": repo_name, "point": target_to_json(point), "db_include": list(db_include),
                "process_max": process_max, "safety_backup": safety_backup},
        message=f"In-place restore of {cluster.name}{only} from {repo_name} requested.{safety}",
    )


def check_databases(backup: Backup | None, names: tuple[str, ...]) -> None:
    """Every name must be a database of the set the restore starts from: pgBackRest would
    fail only after the cluster was stopped ([080])."""
    if backup is None or backup.databases is None:
        label = backup.label if backup else "?"
        raise ServiceError(DB_SET_UNREAD.format(label=label), field="db_include")
    for name in names:
        if name not in backup.databases:
            raise ServiceError(DB_NOT_IN_SET.format(
                name=name, label=backup.label, known=", ".join(backup.databases) or "none"),
                field="db_include")
