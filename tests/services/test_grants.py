"""Grants: managed by commands, and every change to them (or to a user's groups) audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from restores.models import AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


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
