"""The access policy: roles, scopes, groups, and services that refuse on their own."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from restores.models import Grant, Operation
from restores.platforms.targets import RestoreTarget
from restores.services import access, backups, drills, operations, power
from tests.factories import UserFactory, user_with_role

pytestmark = pytest.mark.django_db


def test_roles_rank_and_the_highest_grant_covering_a_cluster_wins() -> None:
    user = user_with_role("alice", "viewer")  # every cluster
    assert access.role(user, "local", "payments") == access.VIEWER
    Grant.objects.create(user=user, role="admin", platform="local", namespace="payments")
    access.forget(user)
    assert access.role(user, "local", "payments") == access.ADMIN
    assert access.role(user, "local", "search") == access.VIEWER
    assert access.allowed(user, "promote", platform="local", namespace="payments")
    assert not access.allowed(user, "backup", platform="local", namespace="search")


def test_a_group_grant_covers_its_members_and_a_platform_grant_every_namespace() -> None:
    team = Group.objects.create(name="payments-team")
    Grant.objects.create(group=team, role="operator", platform="kubernetes")
    member, stranger = UserFactory(username="bob"), UserFactory(username="eve")
    member.groups.add(team)
    assert access.role(member, "kubernetes", "anything") == access.OPERATOR
    assert access.role(member, "local", "local") == access.NONE
    assert access.role(stranger, "kubernetes", "anything") == access.NONE


def test_superusers_are_admins_everywhere_and_inactive_or_anonymous_users_nothing() -> None:
    root = UserFactory(username="root", is_superuser=True)
    assert access.role(root, "kubernetes", "x") == access.ADMIN and access.is_global_admin(root)
    gone = user_with_role("gone", "admin")
    gone.is_active = False
    access.forget(gone)
    assert access.role(gone, "local", "local") == access.NONE
    assert access.role(AnonymousUser(), "local", "local") == access.NONE
    with pytest.raises(access.AccessDenied, match="Log in first"):
        access.require(AnonymousUser(), "view", platform="local", namespace="local")


def test_services_refuse_without_the_role_even_when_no_view_asked(
    two_teams: dict[str, object]
) -> None:
    pay = two_teams["payments"]
    viewer = user_with_role("viewer", "viewer")
    operator = user_with_role("op", "operator", platform="local", namespace="payments")
    with pytest.raises(access.AccessDenied):
        backups.backup_request(cluster=pay, repo_name="repo1", backup_type="full",
                                user=viewer)  # type: ignore[arg-type]
    with pytest.raises(access.AccessDenied, match="needs the admin role"):
        power.power_request(cluster=pay, shutdown=True, user=operator,  # type: ignore[arg-type]
                                  confirm="pay-db")
    with pytest.raises(access.AccessDenied):
        drills.drill_request(cluster=two_teams["search"], repo_name="repo1",  # type: ignore[arg-type]
                             point=RestoreTarget(), user=operator)
    with pytest.raises(access.AccessDenied):  # the net under every service
        operations.operation_create(cluster=pay, kind="restore_in_place", params={},  # type: ignore[arg-type]
                                  user=operator, message="x")
    assert not Operation.objects.exclude(kind="drill").exists()
    op = backups.backup_request(cluster=pay, repo_name="repo1", backup_type="full",  # type: ignore[arg-type]
                                 user=operator)
    assert op.requested_by == operator
