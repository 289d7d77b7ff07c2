"""Manual backups: refused when they cannot work (no full to build on, a standby, a cluster
that is down or busy). Messages are module constants the tests assert against."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from restores.models import Backup, Cluster, Operation
from restores.platforms.base import BACKUP_TYPES
from restores.services import access
from restores.services.errors import ServiceError
from restores.services.operations import active_operation, busy_error, operation_create

CLUSTER_GONE = "{cluster} is no longer reported by its platform; it cannot be backed up."


BACKUP_TYPE_UNKNOWN = "Choose a backup type: full, diff or incr."


BACKUP_REPO_UNKNOWN = "{cluster} has no repo named {repo}."


BACKUP_NEEDS_FULL = (
    "{repo} has no full backup yet, so a {type} backup has nothing to build on. "
    "Take a full backup first."
)


BACKUP_ON_STANDBY = (
    "{cluster} is a standby: backups run on the primary of the repo's stanza. Back up the "
    "primary cluster instead."
)


BACKUP_ON_SHUTDOWN = "{cluster} is shut down: start it before taking a backup."


def backup_request(
    *,
    cluster: Cluster,
    repo_name: str,
    backup_type: str,
    user: AbstractBaseUser | AnonymousUser | None,
) -> Operation:
    """Ask for a manual backup of `cluster` into `repo_name`."""
    access.require_cluster(user, "backup", cluster)
    if backup_type not in BACKUP_TYPES:
        raise ServiceError(BACKUP_TYPE_UNKNOWN, field="backup_type")
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None:
        raise ServiceError(
            BACKUP_REPO_UNKNOWN.format(cluster=cluster.name, repo=repo_name), field="repo"
        )
    if not cluster.present:
        raise ServiceError(CLUSTER_GONE.format(cluster=cluster.name))
    if cluster.role == Cluster.Role.STANDBY:
        raise ServiceError(BACKUP_ON_STANDBY.format(cluster=cluster.name))
    if cluster.role == Cluster.Role.SHUTDOWN:
        raise ServiceError(BACKUP_ON_SHUTDOWN.format(cluster=cluster.name))
    if backup_type != "full" and not repo.backups.filter(type="full").exists():
        raise ServiceError(
            BACKUP_NEEDS_FULL.format(repo=repo.name, type=backup_type), field="backup_type"
        )
    if active_operation(cluster):
        raise busy_error(cluster)
    return operation_create(
        cluster=cluster,
        kind=Operation.Kind.BACKUP,
        params={"repo": repo.name, "type": backup_type},
        user=user,
        message=(
            f"{Backup.Type(backup_type).label.capitalize()} backup of {cluster.name} to "
            f"{repo.name} requested."
        ),
    )
