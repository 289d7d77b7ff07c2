"""Standby clusters: a new cluster replaying a primary's repo (or streaming from it)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from restores.models import Cluster, Operation
from restores.platforms import manifests
from restores.platforms.base import ClusterRef, PlatformError
from restores.services import access, live
from restores.services.errors import ServiceError
from restores.services.operations import User, operation_create, require_present

STANDBY_NEEDS_SOURCE = "A standby replays from a repo of its primary, or streams from a host."


STANDBY_SOURCE_IS_STANDBY = "{cluster} is itself a standby; a standby needs a primary's repo."


NAME_TAKEN = "A cluster named {name} already exists in {namespace}; pick another name."


def standby_request(
    *, source: Cluster, name: str, namespace: str, user: User, repo_name: str | None = "repo1",
    host: str | None = None, port: int | None = None, storage: str = "1Gi",
) -> Operation:
    """Create `name` as a standby of `source`, replaying from its repo or streaming."""
    access.require_cluster(user, "standby", source)
    access.require(user, "standby", platform=source.platform, namespace=namespace)
    require_present(source)
    if source.role == Cluster.Role.STANDBY:
        raise ServiceError(STANDBY_SOURCE_IS_STANDBY.format(cluster=source.name))
    if not repo_name and not host:
        raise ServiceError(STANDBY_NEEDS_SOURCE)
    try:
        manifests.check_cluster_name(name, namespace)
    except PlatformError as exc:
        raise ServiceError(exc.message, field="name") from None
    try:
        exists = live.ask(source.platform, "is the name free",
                          lambda p: p.cluster_exists(ClusterRef(namespace, name)))
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
