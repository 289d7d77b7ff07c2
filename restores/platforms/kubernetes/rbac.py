"""Exactly what the Kubernetes platform asks of the API, for least-privilege RBAC.

deploy/rbac.yaml grants these and nothing else; tests/test_deploy.py checks that the two
agree, and the platform tests check that every request the platform makes is listed here.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Permission:
    api_group: str
    resource: str
    verbs: tuple[str, ...]
    why: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "postgres-operator.crunchydata.com", "postgresclusters",
        ("get", "list", "watch", "create", "patch", "delete"),
        "read one cluster (get), the fleet (list) and its changes (watch); create clones "
        "and standbys (create, also for the server-side dry run); merge patches for backups, "
        "restores, shutdown/start, promotion and clearing dataSource (patch); delete a "
        "drill's scratch clone once verified (delete: only a cluster the drill's operation "
        "created and annotated). Status is read from the object itself: no "
        "postgresclusters/status, no update.",
    ),
    Permission("", "pods", ("list",),
               "find the leader pod (role=master) of each cluster, and verify a shutdown"),
    Permission("", "pods/exec", ("get", "create"),
               "run `pgbackrest info` / `repo-ls` (and a drill's read-only `psql` checks) in "
               "the database container; the Python "
               "client opens the websocket with GET, newer API servers authorise it as create"),
    Permission("", "events", ("list",),
               "read PGO's Warning events (InvalidDataSource, StanzaNotCreated, ...) that "
               "explain a restore or backup that does not start"),
    Permission("apps", "statefulsets", ("list",),
               "verify shutdown/start: instance and repo-host StatefulSets at 0 / back up"),
    Permission("apps", "deployments", ("list",), "verify shutdown/start: PgBouncer"),
    Permission("batch", "cronjobs", ("list",),
               "verify shutdown/start: scheduled backups suspended / resumed"),
    Permission("batch", "jobs", ("list",),
               "name the failed backup Job; report backup Jobs still running at shutdown"),
)


def allowed(api_group: str, resource: str, verb: str) -> bool:
    return any(
        p.api_group == api_group and p.resource == resource and verb in p.verbs
        for p in PERMISSIONS
    )
