"""Services for who holds which role: grants created and removed (the admin, `manage.py
grant` / `revoke`), and changes to a user's groups or superuser flag, each audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from restores.models import Grant
from restores.models import auditlog as audit
from restores.services import access

User = access.User

GRANT_NEEDS_ONE = "Name either a user or a group, not both."
GRANT_UNKNOWN_USER = "There is no user {name!r}."
GRANT_UNKNOWN_GROUP = "There is no group {name!r} (create it in the admin, or with --create-group)."
GRANT_UNKNOWN_ROLE = "A role is viewer, operator or admin, not {role!r}."
GRANT_NAMESPACE_NEEDS_PLATFORM = "A namespace belongs to a platform: name the platform too."
GRANT_EXISTS = "That grant exists already."


def _describe(grant: Grant) -> dict[str, Any]:
    return {"user": grant.user.get_username() if grant.user_id and grant.user else "",
            "group": grant.group.name if grant.group_id and grant.group else "",
            "role": grant.role, "platform": grant.platform, "namespace": grant.namespace}


def grant_create(*, role: str, user: User, username: str = "", group: str = "",
                 platform: str = "", namespace: str = "", create_group: bool = False) -> Grant:
    """Give a user, or a group's members, `role` on platform/namespace ("" = all)."""
    from restores.services.errors import ServiceError

    if bool(username) == bool(group):
        raise ServiceError(GRANT_NEEDS_ONE)
    if role not in Grant.Role.values:
        raise ServiceError(GRANT_UNKNOWN_ROLE.format(role=role), field="role")
    if namespace and not platform:
        raise ServiceError(GRANT_NAMESPACE_NEEDS_PLATFORM, field="platform")
    target_user = target_group = None
    if username:
        target_user = get_user_model().objects.filter(username=username).first()
        if target_user is None:
            raise ServiceError(GRANT_UNKNOWN_USER.format(name=username), field="user")
    else:
        target_group = Group.objects.filter(name=group).first()
        if target_group is None and create_group:
            target_group = Group.objects.create(name=group)
        if target_group is None:
            raise ServiceError(GRANT_UNKNOWN_GROUP.format(name=group), field="group")
    try:
        with transaction.atomic():
            grant = Grant.objects.create(user=target_user, group=target_group, role=role,
                                         platform=platform, namespace=namespace)
            audit.audit_record(action=audit.GRANT_CREATED, user=user, params=_describe(grant))
    except IntegrityError:
        raise ServiceError(GRANT_EXISTS) from None
    return grant


def grant_changed(*, grant: Grant, before: Grant | None, user: User) -> None:
    """Audit a grant the admin created or edited (already saved)."""
    params = _describe(grant)
    if before is not None:
        params["before"] = _describe(before)
    audit.audit_record(action=audit.GRANT_CREATED, user=user, params=params)


def grant_deleted(*, grant: Grant, user: User) -> None:
    audit.audit_record(action=audit.GRANT_DELETED, user=user, params=_describe(grant))


def grant_delete(*, grant: Grant, user: User) -> None:
    with transaction.atomic():
        grant_deleted(grant=grant, user=user)
        grant.delete()


def user_snapshot(target: Any) -> dict[str, Any]:
    """What about a user changes its access: its groups and its flags."""
    return {"groups": sorted(target.groups.values_list("name", flat=True)),
            "is_superuser": target.is_superuser, "is_staff": target.is_staff,
            "is_active": target.is_active}


def user_changed(*, target: Any, before: dict[str, Any] | None, user: User) -> None:
    """Audit a user created, or one whose groups or flags changed."""
    after = user_snapshot(target)
    if before == after:
        return
    audit.audit_record(action=audit.USER_CHANGED, user=user,
                       params={"user": target.get_username(), "before": before, "after": after})
