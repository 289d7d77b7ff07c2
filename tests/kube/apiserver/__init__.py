"""A test Kubernetes API server with the real API's semantics, for the real `kubernetes`
client: PostgresClusters validated against PGO's CRD, core/apps/batch objects, watches, pod
exec over WebSocket, fault injection. See server.KubeServer; fixtures in tests/kube/fixtures.py.
"""

from .errors import ApiError
from .execution import CommandTable, pgbackrest_info, sample_path
from .faults import Fault, Faults, Request
from .resources import PGO_GROUP, PGO_VERSION, Registry, Resource
from .server import KubeServer
from .store import Change, Store

__all__ = [
    "PGO_GROUP",
    "PGO_VERSION",
    "ApiError",
    "Change",
    "CommandTable",
    "Fault",
    "Faults",
    "KubeServer",
    "Registry",
    "Request",
    "Resource",
    "Store",
    "pgbackrest_info",
    "sample_path",
]
