"""Every list is filtered to the user's scope, and a viewer is offered nothing that changes
anything."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


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
