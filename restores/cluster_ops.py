"""Services for the operations on an existing cluster: in-place restore (PITR or a single
database), shut down / start, standby creation and promotion.

Each checks its rules, then records one operation through services.operation_create; the
reconcile loop carries it out. Messages are module constants the tests assert against.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import platforms, rules
from .clones import repo_window
from .models import Cluster, Operation
from .platforms import manifests
from .platforms.base import ClusterRef, PlatformError
from .platforms.restore_options import RestoreTarget
from .services import ServiceError, operation_create

User = AbstractBaseUser | AnonymousUser | None

CLUSTER_GONE = "{cluster} is no longer reported by its platform."
REPO_EMPTY = "{cluster} has no backup in {repo}: there is nothing to restore from."
RESTORE_ON_STANDBY = (
    "{cluster} is a standby: it follows its primary's repo. Promote it first, or restore the "
    "primary."
)
RESTORE_NEEDS_CONFIRMATION = (
    "Type the cluster's name, {cluster}, to confirm: an in-place restore overwrites its data."
)
ALREADY_SHUT_DOWN = "{cluster} is already shut down."
ALREADY_RUNNING = "{cluster} is already running."
STANDBY_NEEDS_SOURCE = "A standby replays from a repo of its primary, or streams from a host."
STANDBY_SOURCE_IS_STANDBY = "{cluster} is itself a standby; a standby needs a primary's repo."
NAME_TAKEN = "A cluster named {name} already exists in {namespace}; pick another name."
NOT_A_STANDBY = "{cluster} is not a standby: there is nothing to promote."
PROMOTE_NEEDS_CONFIRMATION = (
    "Type the standby's name, {cluster}, to confirm the promotion."
)
SPLIT_BRAIN = (
    "{primary} is still running as a primary. Promoting {cluster} now would leave two "
    "primaries writing to diverging timelines (split brain). Shut {primary} down first, or "
    "confirm it is unreachable for good."
)


def _check_present(cluster: Cluster) -> None:
    if not cluster.present:
        raise ServiceError(CLUSTER_GONE.format(cluster=cluster.name))


def restore_in_place_request(
    *, cluster: Cluster, repo_name: str, point: RestoreTarget, user: User, confirm: str,
    db_include: tuple[str, ...] = (), process_max: int | None = None,
) -> Operation:
    """Restore `cluster` over itself to `point` (or only `db_include`)."""
    _check_present(cluster)
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
    kind = Operation.Kind.RESTORE_DATABASE if db_include else Operation.Kind.RESTORE_IN_PLACE
    only = f" (only {', '.join(db_include)})" if db_include else ""
    return operation_create(
        cluster=cluster, kind=kind, user=user,
        params={"repo": repo_name, "point": _point_json(point), "db_include": list(db_include),
                "process_max": process_max},
        message=f"In-place restore of {cluster.name}{only} from {repo_name} requested.",
    )


def _point_json(point: RestoreTarget) -> dict[str, object]:
    return {
        "kind": point.kind, "time": point.time.isoformat() if point.time else "",
        "lsn": point.lsn or "", "xid": str(point.xid) if point.xid else "",
        "name": point.name or "", "label": point.label or "", "exclusive": point.exclusive,
    }


def power_request(*, cluster: Cluster, shutdown: bool, user: User) -> Operation:
    """Shut `cluster` down, or start it again."""
    _check_present(cluster)
    if shutdown and cluster.role == Cluster.Role.SHUTDOWN:
        raise ServiceError(ALREADY_SHUT_DOWN.format(cluster=cluster.name))
    if not shutdown and cluster.role != Cluster.Role.SHUTDOWN:
        raise ServiceError(ALREADY_RUNNING.format(cluster=cluster.name))
    kind = Operation.Kind.SHUTDOWN if shutdown else Operation.Kind.START
    verb = "Shutdown" if shutdown else "Start"
    return operation_create(cluster=cluster, kind=kind, user=user, params={},
                            message=f"{verb} of {cluster.name} requested.")


def standby_request(
    *, source: Cluster, name: str, namespace: str, user: User, repo_name: str | None = "repo1",
    host: str | None = None, port: int | None = None, storage: str = "1Gi",
) -> Operation:
    """Create `name` as a standby of `source`, replaying from its repo or streaming."""
    _check_present(source)
    if source.role == Cluster.Role.STANDBY:
        raise ServiceError(STANDBY_SOURCE_IS_STANDBY.format(cluster=source.name))
    if not repo_name and not host:
        raise ServiceError(STANDBY_NEEDS_SOURCE)
    try:
        manifests.check_cluster_name(name, namespace)
    except PlatformError as exc:
        raise ServiceError(exc.message, field="name") from None
    try:
        exists = platforms.get(source.platform).cluster_exists(ClusterRef(namespace, name))
    except PlatformError as exc:  # e.g. a namespace the console does not manage
        raise ServiceError(exc.message, field="namespace") from None
    if exists:
        raise ServiceError(NAME_TAKEN.format(name=name, namespace=namespace), field="name")
    try:
        with transaction.atomic():
            target = Cluster.objects.create(
                platform=source.platform, namespace=namespace, name=name,
                role=Cluster.Role.UNKNOWN, pg_version=source.pg_version, state="creating",
                state_message=f"Being created as a standby of {source.name}.",
            )
            return operation_create(
                cluster=target, kind=Operation.Kind.CREATE_STANDBY, user=user,
                params={"source": {"namespace": source.namespace, "name": source.name},
                        "repo": repo_name, "host": host, "port": port, "storage": storage},
                message=f"Standby {name} of {source.name} requested.",
            )
    except IntegrityError:
        raise ServiceError(NAME_TAKEN.format(name=name, namespace=namespace),
                           field="name") from None


def promote_request(*, cluster: Cluster, confirm: str, user: User,
                    primary_gone: bool = False) -> Operation:
    """Promote the standby `cluster`, refusing while its primary still runs as one."""
    _check_present(cluster)
    if cluster.role != Cluster.Role.STANDBY:
        raise ServiceError(NOT_A_STANDBY.format(cluster=cluster.name))
    if confirm != cluster.name:
        raise ServiceError(PROMOTE_NEEDS_CONFIRMATION.format(cluster=cluster.name),
                           field="confirm")
    primary = _standby_primary(cluster)
    if primary is not None and primary.role == Cluster.Role.PRIMARY and not primary_gone:
        raise ServiceError(SPLIT_BRAIN.format(primary=primary.name, cluster=cluster.name))
    return operation_create(
        cluster=cluster, kind=Operation.Kind.PROMOTE, user=user,
        params={"primary": primary.name if primary else "", "primary_gone": primary_gone},
        message=f"Promotion of {cluster.name} requested.",
    )


def _standby_primary(cluster: Cluster) -> Cluster | None:
    """The primary a standby was created from, as the console recorded it."""
    op = (cluster.operations.filter(kind=Operation.Kind.CREATE_STANDBY)
          .order_by("-created_at").first())
    if op is None:
        return None
    source = op.params.get("source") or {}
    return Cluster.objects.filter(platform=cluster.platform, namespace=source.get("namespace"),
                                  name=source.get("name")).first()
