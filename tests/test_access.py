"""The access policy: roles, scopes, groups; services refuse on their own; every list is
filtered to the user's scope."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.management import call_command
from django.test import Client

from restores.models import AuditEntry, Grant, Operation
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


def test_every_list_shows_only_the_users_scope(two_teams: dict[str, object]) -> None:
    client = Client()
    client.force_login(user_with_role("pay", "viewer", platform="local", namespace="payments"))
    fleet = client.get("/").content.decode()
    assert 'data-cluster="pay-db"' in fleet and "search-db" not in fleet
    report = client.get("/drills/").content.decode()
    assert "pay-db" in report and "search-db" not in report
    csv = b"".join(client.get("/drills.csv").streaming_content).decode()  # type: ignore[attr-defined]
    assert "payments/pay-db" in csv and "search-db" not in csv
    search = two_teams["search"]
    op = search.operations.first()  # type: ignore[attr-defined]
    assert client.get(op.get_absolute_url()).status_code == 403
    assert client.get(search.get_absolute_url()).status_code == 403  # type: ignore[attr-defined]
    audit = client.get("/audit/").content.decode()
    assert "search-db" not in audit


def test_a_viewer_sees_no_button_that_changes_anything(two_teams: dict[str, object]) -> None:
    client = Client()
    client.force_login(user_with_role("look", "viewer"))
    page = client.get(two_teams["payments"].get_absolute_url()).content.decode()  # type: ignore[attr-defined]
    for marker in ('id="backup-form"', 'id="clone-button"', 'id="drill-button"',
                   'id="shutdown-link"', 'id="restore-link"'):
        assert marker not in page
    assert 'id="read-only"' in page
    assert "Clone / restore" not in client.get("/").content.decode()


def test_grants_are_managed_by_commands_and_every_change_is_audited(capsys) -> None:  # type: ignore[no-untyped-def]
    UserFactory(username="carol")
    call_command("grant", "--user", "carol", "--role", "operator", "--platform", "local",
                 "--namespace", "payments")
    call_command("grant", "--group", "dbas", "--role", "admin", "--create-group")
    call_command("grants")
    listing = capsys.readouterr().out
    assert "user carol: operator on local/payments" in listing
    assert "group dbas: admin on */*" in listing
    call_command("revoke", "--user", "carol", "--role", "operator", "--platform", "local",
                 "--namespace", "payments")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "params__role"))
    assert actions == [("grant.created", "operator"), ("grant.created", "admin"),
                       ("grant.deleted", "operator")]
    with pytest.raises(Exception, match="There is no user 'nobody'"):
        call_command("grant", "--user", "nobody", "--role", "viewer")


def test_a_change_to_a_users_groups_in_the_admin_is_audited() -> None:
    admin_user = UserFactory(username="root", is_superuser=True, is_staff=True)
    dbas = Group.objects.create(name="dbas")
    target = UserFactory(username="dave")
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    assert page.status_code == 200
    form = {"username": "dave", "groups": [dbas.pk], "is_active": "on",
            "date_joined_0": "2026-12-01", "date_joined_1": "10:00:00",
            "last_login_0": "", "last_login_1": "", "password": target.password}
    r = client.post(f"/admin/auth/user/{target.pk}/change/", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="user.changed")
    assert entry.actor_name == "root"
    assert entry.params["before"]["groups"] == [] and entry.params["after"]["groups"] == ["dbas"]
