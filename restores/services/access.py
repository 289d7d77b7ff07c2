"""Who may do what, where: the one policy module views and services both ask.

Roles rank viewer < operator < admin:
- viewer: reads the clusters in its scope (Fleet, cluster pages, operations, drills, audit);
- operator: also backups, clones into new clusters, drills, standbys;
- admin: also in-place restores (whole or some databases), shut down / start, promotion,
  approvals (the two-person rule).

A role is held through a `Grant` (to a user, or to a group every member of which holds it)
over a platform and namespace, "" meaning every one. A user's role on a cluster is the
highest grant covering it; superusers are admins everywhere. `user=None` is the console
itself (its schedules and steps): never a request's user, which is a User or AnonymousUser.

Views call `require` before reading a form; services call it again before they write, so a
view that forgot cannot open a hole. Hiding a button is never the check.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from restores.models import Cluster, Grant, Operation

User = AbstractBaseUser | AnonymousUser | None

NONE, VIEWER, OPERATOR, ADMIN = 0, 1, 2, 3
RANK = {Grant.Role.VIEWER: VIEWER, Grant.Role.OPERATOR: OPERATOR, Grant.Role.ADMIN: ADMIN}
ROLE_NAMES = {VIEWER: "viewer", OPERATOR: "operator", ADMIN: "admin"}

# The least role each action needs.
ACTIONS: dict[str, int] = {
    "view": VIEWER,
    "backup": OPERATOR,
    "clone": OPERATOR,
    "drill": OPERATOR,
    "standby": OPERATOR,
    "restore_in_place": ADMIN,
    "restore_database": ADMIN,
    "shutdown": ADMIN,
    "start": ADMIN,
    "promote": ADMIN,
    "approve": ADMIN,
}
# The action an operation of each kind is.
KIND_ACTION = {
    Operation.Kind.BACKUP: "backup",
    Operation.Kind.CLONE: "clone",
    Operation.Kind.DRILL: "drill",
    Operation.Kind.CREATE_STANDBY: "standby",
    Operation.Kind.RESTORE_IN_PLACE: "restore_in_place",
    Operation.Kind.RESTORE_DATABASE: "restore_database",
    Operation.Kind.SHUTDOWN: "shutdown",
    Operation.Kind.START: "start",
    Operation.Kind.PROMOTE: "promote",
}
WORDS = {
    "view": "see", "backup": "back up", "clone": "clone or restore into a new cluster",
    "drill": "run drills on", "standby": "create standbys of",
    "restore_in_place": "restore in place", "restore_database": "restore databases of",
    "shutdown": "shut down", "start": "start", "promote": "promote",
    "approve": "approve operations on",
}

DENIED = (
    "You may not {what} {where}: that needs the {role} role there, and you have {have}. "
    "Ask an admin of the console for it."
)
NOT_LOGGED_IN = "Log in first."


class AccessDenied(PermissionDenied):
    """A role said no. Django answers it with 403; the message says what role is missing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class Scope:
    """Where a grant applies: a platform and namespace, "" = every one."""

    role: int
    platform: str = ""
    namespace: str = ""

    def covers(self, platform: str, namespace: str) -> bool:
        return (not self.platform or self.platform == platform) and (
            not self.namespace or self.namespace == namespace)

    @property
    def everywhere(self) -> bool:
        return not self.platform and not self.namespace


def scopes(user: User) -> tuple[Scope, ...]:
    """Every scope `user` holds a role in, read once per user object (one query)."""
    if user is None or (user.is_authenticated and user.is_superuser):  # type: ignore[union-attr]
        return (Scope(ADMIN),)
    if not user.is_authenticated or not user.is_active:  # type: ignore[union-attr]
        return ()
    cached = getattr(user, "_dr_scopes", None)
    if cached is None:
        rows = Grant.objects.filter(Q(user=user) | Q(group__user=user)).values_list(
            "role", "platform", "namespace").distinct()
        cached = tuple(Scope(RANK[role], platform, namespace)
                       for role, platform, namespace in rows)
        user._dr_scopes = cached  # type: ignore[union-attr]
    return cached


def forget(user: User) -> None:
    """Drop the scopes read for `user` (after its grants changed)."""
    if user is not None and hasattr(user, "_dr_scopes"):
        del user._dr_scopes  # type: ignore[union-attr]


def role(user: User, platform: str, namespace: str) -> int:
    return max((s.role for s in scopes(user) if s.covers(platform, namespace)), default=NONE)


def best_role(user: User) -> int:
    """The highest role `user` holds anywhere (what the navigation may offer)."""
    return max((s.role for s in scopes(user)), default=NONE)


def is_global_admin(user: User) -> bool:
    return any(s.role == ADMIN and s.everywhere for s in scopes(user))


def allowed(user: User, action: str, *, platform: str, namespace: str) -> bool:
    return role(user, platform, namespace) >= ACTIONS[action]


def require(user: User, action: str, *, platform: str, namespace: str) -> None:
    """AccessDenied unless `user` may do `action` on the clusters of platform/namespace."""
    if user is not None and not user.is_authenticated:
        raise AccessDenied(NOT_LOGGED_IN)
    have = role(user, platform, namespace)
    needed = ACTIONS[action]
    if have >= needed:
        return
    where = f"in {platform}/{namespace}" if namespace else f"on {platform}"
    raise AccessDenied(DENIED.format(what=WORDS[action], where=where,
                                     role=ROLE_NAMES[needed],
                                     have=f"the {ROLE_NAMES[have]} role" if have else "none"))


SCRATCH_REFUSED = (
    "{name} is a drill's scratch copy: the console does not {what} it. Its drill deletes it "
    "when it ends; the drill's operation on its source holds the evidence."
)


def require_cluster(user: User, action: str, cluster: Cluster) -> None:
    """AccessDenied unless `user` may do `action` on `cluster`; nobody, not even the
    console's own schedules, acts on a drill's scratch copy but its drill."""
    if cluster.drill and action != "view":
        raise AccessDenied(SCRATCH_REFUSED.format(name=cluster.name, what=WORDS[action]))
    require(user, action, platform=cluster.platform, namespace=cluster.namespace)


def require_somewhere(user: User, action: str) -> None:
    """AccessDenied unless `user` may do `action` on some cluster (a wizard before its
    source is chosen)."""
    if user is not None and not user.is_authenticated:
        raise AccessDenied(NOT_LOGGED_IN)
    needed = ACTIONS[action]
    if best_role(user) < needed:
        raise AccessDenied(f"You may not {WORDS[action]} any cluster: that needs the "
                           f"{ROLE_NAMES[needed]} role somewhere. Ask an admin of the console.")


def cluster_filter(user: User, *, prefix: str = "", least: int = VIEWER) -> Q:
    """A filter of the clusters `user` holds at least `least` on, for any queryset
    (`prefix` is the path to the cluster, e.g. "cluster__"). No query of its own beyond
    reading the grants once."""
    terms = [s for s in scopes(user) if s.role >= least]
    if any(s.everywhere for s in terms):
        return Q()
    if not terms:
        return Q(**{f"{prefix}pk__in": []})
    q = Q()
    for s in terms:
        part = Q(**{f"{prefix}platform": s.platform})
        if s.namespace:
            part &= Q(**{f"{prefix}namespace": s.namespace})
        q |= part
    return q


def audit_filter(user: User) -> Q:
    """The audit entries `user` may read: every one for an admin of every cluster; for
    everyone else, the entries about clusters in their scope (not logins, nor grants)."""
    if is_global_admin(user):
        return Q()
    terms = scopes(user)
    if not terms:
        return Q(pk__in=[])
    q = Q(pk__in=[])
    for s in terms:
        part = Q(cluster_name__gt="")
        if s.platform:
            part &= Q(platform=s.platform)
        if s.namespace:
            part &= Q(namespace=s.namespace)
        q |= part
    return q


def role_name(user: User, platform: str, namespace: str) -> str:
    return ROLE_NAMES.get(role(user, platform, namespace), "none")


def describe(user: User) -> list[dict[str, Any]]:
    """The user's scopes in words, for its own page and the admin."""
    return [{"role": ROLE_NAMES[s.role],
             "scope": "every cluster" if s.everywhere
             else f"{s.platform}/{s.namespace or '*'}"} for s in scopes(user)]
