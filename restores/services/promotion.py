"""Promotion of a standby, refused while its old primary runs as one (split brain); the "old
primary is gone for good" acknowledgement only where nothing can check it; and the clusters
a promotion made writable, which keep a former primary from starting again."""

from __future__ import annotations

from restores import platforms
from restores.models import Cluster, Operation
from restores.services import access
from restores.services.errors import ServiceError
from restores.services.operations import User, operation_create, require_present

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
    require_present(cluster)
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
