"""The Kubernetes platform: PostgresClusters run by Crunchy Data's PGO v5.

The only package that imports the `kubernetes` client. Modules: api (the client, errors),
state (reading PGO's status, pure), core (shared helpers), backups, clones, lifecycle (the
operations), platform (KubernetesPlatform), watch (following the fleet), rbac (what it may do).
"""

from .platform import KubernetesPlatform
from .rbac import PERMISSIONS
from .watch import ClusterWatch, watch_clusters

__all__ = ["PERMISSIONS", "ClusterWatch", "KubernetesPlatform", "watch_clusters"]
