"""Services for the operations on an existing cluster: in-place restore (PITR or a single
database), shut down / start, standby creation and promotion.

Each checks its rules, then records one operation through services.operation_create; the
reconcile loop carries it out. Messages are module constants the tests assert against.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import access, platforms, rules
from .clones import repo_window
from .models import Backup, Cluster, Operation
from .platforms import manifests
from .platforms.base import ClusterRef, PlatformError
from .platforms.targets import RestoreTarget
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
POWER_NEEDS_CONFIRMATION = (
    "Type the cluster's name, {cluster}, exactly, to confirm: {what}."
)
FORMER_PRIMARY = (
    "{cluster} was the primary of {promoted}, which was promoted and now accepts writes. "
    "Starting {cluster} would make a second writable primary with diverging data (split "
    "brain). The safe way back: create a standby of {promoted} and move to it, then retire "
    "{cluster}. To start it anyway (to read its data, with applications kept away from it), "
    "tick the acknowledgement: it is recorded."
)
DB_NOT_IN_SET = (
    "{name} is not a database of backup set {label}, which this restore starts from. "
    "It holds: {known}."
)
DB_SET_UNREAD = (
    "The console has not read which databases backup set {label} holds yet: reload this "
    "page in a moment, then choose from the list."
)
NOT_A_STANDBY = "{cluster} is not a standby: there is nothing to promote."
PROMOTE_NEEDS_CONFIRMATION = (
    "Type the standby's name, {cluster}, to confirm the promotion."
)
SPLIT_BRAIN = (
    "{primary} is still running as a primary. Promoting {cluster} now would leave two "
    "primaries writing to diverging timelines (split brain). Shut {primary} down first."
)
PRIMARY_UNSEEN = (
    "The console cannot see {cluster}'s old primary{primary}, so it cannot check that it has "
    "stopped. Promote only if it is down for good (a disaster, not a switchover): tick the "
    "box that says so; the acknowledgement is recorded."
)
OVERRIDE_NOT_OFFERED = (
    "The console checks {cluster}'s old primary itself{primary}: there is nothing to "
    "acknowledge. Shut the old primary down first if it still runs."
)


def _check_present(cluster: Cluster) -> None:
    if not cluster.present:
        raise ServiceError(CLUSTER_GONE.format(cluster=cluster.name))


def restore_in_place_request(
    *, cluster: Cluster, repo_name: str, point: RestoreTarget, user: User, confirm: str,
    db_include: tuple[str, ...] = (), process_max: int | None = None,
    safety_backup: bool = True,
) -> Operation:
    """Restore `cluster` over itself to `point` (or only `db_include`). `safety_backup`: take
    a backup of the current state first, so the restore can itself be undone."""
    kind = Operation.Kind.RESTORE_DATABASE if db_include else Operation.Kind.RESTORE_IN_PLACE
    access.require_cluster(user, access.KIND_ACTION[kind], cluster)
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
    if db_include:
        check_databases(repo.backups.filter(label=verdict.base).first(), db_include)
    only = f" (only {', '.join(db_include)})" if db_include else ""
    safety = "" if safety_backup else " Without a backup of the current state first, as asked."
    return operation_create(
        cluster=cluster, kind=kind, user=user,
        params={"repo": repo_name, "point": _point_json(point), "db_include": list(db_include),
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


def _point_json(point: RestoreTarget) -> dict[str, object]:
    return {
        "kind": point.kind, "time": point.time.isoformat() if point.time else "",
        "lsn": point.lsn or "", "xid": str(point.xid) if point.xid else "",
        "name": point.name or "", "label": point.label or "", "exclusive": point.exclusive,
    }


def power_request(*, cluster: Cluster, shutdown: bool, user: User, confirm: str,
                  acknowledge_split_brain: bool = False) -> Operation:
    """Shut `cluster` down, or start it again; `confirm` is its name, typed. Starting a
    former primary whose standby was promoted is refused unless acknowledged."""
    access.require_cluster(user, "shutdown" if shutdown else "start", cluster)
    _check_present(cluster)
    if confirm != cluster.name:
        what = ("it stops accepting connections, its backups and the standbys that follow it"
                if shutdown else "it starts accepting connections again")
        raise ServiceError(POWER_NEEDS_CONFIRMATION.format(cluster=cluster.name, what=what),
                           field="confirm")
    if shutdown and cluster.role == Cluster.Role.SHUTDOWN:
        raise ServiceError(ALREADY_SHUT_DOWN.format(cluster=cluster.name))
    if not shutdown and cluster.role != Cluster.Role.SHUTDOWN:
        raise ServiceError(ALREADY_RUNNING.format(cluster=cluster.name))
    promoted = [] if shutdown else promoted_successors(cluster)
    if promoted and not acknowledge_split_brain:
        raise ServiceError(FORMER_PRIMARY.format(
            cluster=cluster.name, promoted=", ".join(c.name for c in promoted)),
            field="acknowledge")
    kind = Operation.Kind.SHUTDOWN if shutdown else Operation.Kind.START
    verb = "Shutdown" if shutdown else "Start"
    note = ""
    if promoted:
        note = (f" Acknowledged: {', '.join(c.name for c in promoted)} was promoted from it and "
                "accepts writes; started anyway.")
    return operation_create(
        cluster=cluster, kind=kind, user=user,
        params={"acknowledge_split_brain": bool(promoted and acknowledge_split_brain)},
        message=f"{verb} of {cluster.name} requested.{note}")


def standby_request(
    *, source: Cluster, name: str, namespace: str, user: User, repo_name: str | None = "repo1",
    host: str | None = None, port: int | None = None, storage: str = "1Gi",
) -> Operation:
    """Create `name` as a standby of `source`, replaying from its repo or streaming."""
    access.require_cluster(user, "standby", source)
    access.require(user, "standby", platform=source.platform, namespace=namespace)
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


def promotion_override_offered(cluster: Cluster) -> bool:
    """Whether promoting `cluster` may rest on the DBA's word that its old primary is gone:
    only where neither the platform (local checks its own source before every promotion)
    nor the console (a known, present source cluster) can check the old primary."""
    if platforms.get(cluster.platform).checks_standby_source:
        return False
    primary = standby_primary(cluster)
    return primary is None or not primary.present


def promote_request(*, cluster: Cluster, confirm: str, user: User,
                    primary_gone: bool = False) -> Operation:
    """Promote the standby `cluster`, refusing while its primary still runs as one. Where
    the old primary cannot be checked, `primary_gone` (the DBA's acknowledgement) is
    required, and recorded."""
    access.require_cluster(user, "promote", cluster)
    _check_present(cluster)
    if cluster.role != Cluster.Role.STANDBY:
        raise ServiceError(NOT_A_STANDBY.format(cluster=cluster.name))
    if confirm != cluster.name:
        raise ServiceError(PROMOTE_NEEDS_CONFIRMATION.format(cluster=cluster.name),
                           field="confirm")
    primary = standby_primary(cluster)
    named = f" {primary.name}" if primary else ""
    if promotion_override_offered(cluster):
        if not primary_gone:
            raise ServiceError(PRIMARY_UNSEEN.format(cluster=cluster.name, primary=named),
                               field="primary_gone")
    elif primary_gone:
        raise ServiceError(OVERRIDE_NOT_OFFERED.format(cluster=cluster.name, primary=named),
                           field="primary_gone")
    elif primary is not None and primary.role == Cluster.Role.PRIMARY:
        raise ServiceError(SPLIT_BRAIN.format(primary=primary.name, cluster=cluster.name))
    note = (f" The old primary{named} was acknowledged as gone for good by the requester."
            if primary_gone else "")
    return operation_create(
        cluster=cluster, kind=Operation.Kind.PROMOTE, user=user,
        params={"primary": primary.name if primary else "", "primary_gone": primary_gone},
        message=f"Promotion of {cluster.name} requested.{note}",
    )


def standby_primary(cluster: Cluster) -> Cluster | None:
    """The primary a standby was created from, as the console recorded it."""
    op = (cluster.operations.filter(kind=Operation.Kind.CREATE_STANDBY)
          .order_by("-created_at").first())
    if op is None:
        return None
    source = op.params.get("source") or {}
    return Cluster.objects.filter(platform=cluster.platform, namespace=source.get("namespace"),
                                  name=source.get("name")).first()


def promoted_successors(cluster: Cluster) -> list[Cluster]:
    """Present, writable clusters that were standbys of `cluster` and were promoted: while
    one of them runs, starting `cluster` again makes a second writable primary."""
    made = Operation.objects.filter(
        kind=Operation.Kind.CREATE_STANDBY, status=Operation.Status.SUCCEEDED,
        cluster__platform=cluster.platform,
        params__source__namespace=cluster.namespace, params__source__name=cluster.name,
    ).values("cluster_id")
    promoted = Operation.objects.filter(kind=Operation.Kind.PROMOTE,
                                        status=Operation.Status.SUCCEEDED).values("cluster_id")
    return list(Cluster.objects.filter(pk__in=made, present=True, role=Cluster.Role.PRIMARY)
                .filter(pk__in=promoted).order_by("name"))
