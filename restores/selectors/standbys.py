"""The standbys the console made of a cluster that still follow it."""

from __future__ import annotations

from restores.models import Cluster, Operation


def standbys_of(cluster: Cluster) -> list[Cluster]:
    """Present clusters the console made as standbys of `cluster` that still follow it:
    what stops following when it is shut down."""
    made = Operation.objects.filter(
        kind=Operation.Kind.CREATE_STANDBY, cluster__platform=cluster.platform,
        params__source__namespace=cluster.namespace, params__source__name=cluster.name,
    ).values("cluster_id")
    return list(Cluster.objects.filter(pk__in=made, present=True, role=Cluster.Role.STANDBY)
                .order_by("name"))
