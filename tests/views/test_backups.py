"""None"""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Operation, Repository
from restores.services import operations

pytestmark = pytest.mark.django_db
URL = "/clusters/local/local/hippo/backup/"


def test_it_starts_a_backup_and_sends_htmx_to_the_operation(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    r = client.post(URL, {"repo": "repo1", "backup_type": "incr"}, **hx)
    op = Operation.objects.get()
    assert r.status_code == 200
    assert r["HX-Redirect"] == f"/operations/{op.id}/"
    assert op.params == {"repo": "repo1", "type": "incr"}
    assert op.requested_by is not None and op.requested_by.get_username() == "dba"


def test_without_htmx_it_redirects(client: Client, repo: Repository) -> None:
    r = client.post(URL, {"repo": "repo1", "backup_type": "full"})
    assert r.status_code == 302
    assert r["Location"] == Operation.objects.get().get_absolute_url()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"repo": "repo1", "backup_type": "weekly"}, "Choose a backup type: full, diff or incr."),
        ({"repo": "repo7", "backup_type": "full"},
         "hippo has no such repo. Choose one of: repo1."),
        ({"repo": "", "backup_type": ""}, "This field is required."),
        ({"repo": "repo1", "backup_type": "full" * 1000}, "Choose a backup type"),
        ({}, "This field is required."),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field_and_changes_nothing(
    client: Client, repo: Repository, hx, data: dict[str, str], message: str  # type: ignore[no-untyped-def]
) -> None:
    r = client.post(URL, data, **hx)
    assert r.status_code == 422
    html = r.content.decode()
    assert html.lstrip().startswith('<form id="backup-form"')
    assert 'class="error field-error"' in html
    assert message in html
    assert not Operation.objects.exists()


def test_a_busy_cluster_is_refused_with_a_clear_message(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    client.post(URL, {"repo": "repo1", "backup_type": "full"}, **hx)
    r = client.post(URL, {"repo": "repo1", "backup_type": "incr"}, **hx)
    assert r.status_code == 422
    expected = operations.CLUSTER_BUSY.format(cluster="hippo", kind="backup", status="pending")
    assert expected in r.content.decode()
    assert Operation.objects.count() == 1


def test_a_forged_post_without_csrf_token_is_403(user, repo: Repository) -> None:  # type: ignore[no-untyped-def]
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    r = c.post(URL, {"repo": "repo1", "backup_type": "full"})
    assert r.status_code == 403
    assert not Operation.objects.exists()


def test_an_unknown_cluster_is_404_and_get_is_405(client: Client, repo: Repository) -> None:
    assert client.post("/clusters/local/local/nope/backup/", {}).status_code == 404
    assert client.get(URL).status_code == 405
    assert not Operation.objects.exists()


def test_anonymous_users_cannot_back_up(repo: Repository) -> None:
    r = Client().post(URL, {"repo": "repo1", "backup_type": "full"})
    assert r.status_code == 302 and r["Location"].startswith("/login/")
    assert not Operation.objects.exists()
