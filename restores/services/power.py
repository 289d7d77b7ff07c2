"""Shut down and start, with the cluster's name typed; a former primary whose standby was
promoted does not start without a recorded acknowledgement."""

from __future__ import annotations

from restores.models import Cluster, Operation
from restores.services import access
from restores.services.errors import ServiceError
from restores.services.operations import User, operation_create, require_present
from restores.services.promotion import promoted_successors

ALREADY_SHUT_DOWN = "{cluster} is already shut down."


ALREADY_RUNNING = "{cluster} is already running."


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


def power_request(*, cluster: Cluster, shutdown: bool, user: User, confirm: str,
                  acknowledge_split_brain: bool = False) -> Operation:
    """Shut `cluster` down, or start it again; `confirm` is its name, typed. Starting a
    former primary whose standby was promoted is refused unless acknowledged."""
    access.require_cluster(user, "shutdown" if shutdown else "start", cluster)
    require_present(cluster)
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
