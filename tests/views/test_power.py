"""The power pages: a shutdown needs the typed name and says what stops; a start of a running
cluster is refused, and a start of a former primary names its promoted standby and asks for
the acknowledgement."""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Cluster, Operation, Repository
from restores.services import power
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db
BASE = "/clusters/local/local/hippo/"


def test_the_start_page_names_the_promoted_cluster_and_asks_for_the_acknowledgement(
    hippo_row: Cluster, promoted_standby: Cluster
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(hippo_row.get_absolute_url() + "start/").content.decode()
    assert 'id="former-primary"' in page and "hippo-sb" in page
    assert 'name="acknowledge"' in page
    r = client.post(hippo_row.get_absolute_url() + "start/", {"confirm": "hippo"})
    assert r.status_code == 422 and 'id="error-acknowledge"' in r.content.decode()
    assert not Operation.objects.filter(kind="start").exists()


def test_a_shutdown_needs_the_typed_name_and_says_what_stops(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    page = client.get(BASE).content.decode()
    assert 'id="shutdown-link"' in page and 'id="start-link"' not in page
    form = client.get(BASE + "shutdown/").content.decode()
    assert 'id="what-stops"' in form and "every connection to hippo" in form
    assert "its backups" in form and "no standby the console knows follows it" in form
    for typed in ("", "hipo", "hippo ", " hippo", "HIPPO"):
        r = client.post(BASE + "shutdown/", {"confirm": typed}, **hx)
        assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode(), typed
    assert not Operation.objects.exists()
    r = client.post(BASE + "shutdown/", {"confirm": "hippo"}, **hx)
    op = Operation.objects.get()
    assert r["HX-Redirect"] == op.get_absolute_url() and op.kind == "shutdown"
    busy = client.post(BASE + "shutdown/", {"confirm": "hippo"}, **hx)
    assert busy.status_code == 422 and "already has an operation in progress" in (
        busy.content.decode())
    assert client.post(BASE + "explode/").status_code == 404


def test_start_is_refused_on_a_running_cluster(client: Client, repo: Repository, hx) -> None:  # type: ignore[no-untyped-def]
    r = client.post(BASE + "start/", {"confirm": "hippo"}, **hx)
    assert r.status_code == 422
    assert power.ALREADY_RUNNING.format(cluster="hippo") in r.content.decode()
    assert not Operation.objects.exists()
