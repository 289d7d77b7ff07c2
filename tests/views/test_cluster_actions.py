"""Shut down / start, promotion, standby and in-place restore through the views."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from restores.models import Cluster, Operation, Repository
from restores.services import power, promotion
from tests.fakes import FakePlatform

pytestmark = pytest.mark.django_db

BASE = "/clusters/local/local/hippo/"


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


def test_promotion_needs_the_typed_name_and_a_standby(client: Client, repo: Repository,
                                                      hx) -> None:  # type: ignore[no-untyped-def]
    r = client.post(BASE + "promote/", {"confirm": "hippo"}, **hx)
    assert r.status_code == 422
    assert promotion.NOT_A_STANDBY.format(cluster="hippo") in r.content.decode()
    Cluster.objects.filter(pk=repo.cluster.pk).update(role="standby")
    r = client.post(BASE + "promote/", {"confirm": "hipo"}, **hx)
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    r = client.post(BASE + "promote/", {"confirm": "hippo"}, **hx)
    assert r["HX-Redirect"] == Operation.objects.get(kind="promote").get_absolute_url()


def test_a_standby_is_created_from_the_form(client: Client, repo: Repository, hx,  # type: ignore[no-untyped-def]
                                            fake: FakePlatform) -> None:
    page = client.get(BASE + "standby/").content.decode()
    assert 'value="hippo-standby"' in page
    bad = client.post(BASE + "standby/", {"name": "Bad_Name", "repo": "repo1"}, **hx)
    assert bad.status_code == 422 and 'id="error-name"' in bad.content.decode()
    r = client.post(BASE + "standby/", {"name": "hippo-standby", "repo": "repo1"}, **hx)
    op = Operation.objects.get()
    assert r["HX-Redirect"] == op.get_absolute_url()
    assert (op.kind, op.cluster.name) == ("create_standby", "hippo-standby")


def test_the_in_place_restore_form_asks_for_a_fresh_window_and_the_sets_databases(
    client: Client, repo: Repository, dispatched: list[str]
) -> None:
    assert client.get(BASE + "restore/").status_code == 200
    assert dispatched == ["restores.sync_cluster", "restores.backup_databases_fetch"]
    Cluster.objects.filter(pk=repo.cluster.pk).update(repos_synced_at=timezone.now())
    repo.backups.update(databases=["hippo", "reporting"])
    page = client.get(BASE + "restore/").content.decode()
    assert dispatched == ["restores.sync_cluster", "restores.backup_databases_fetch"]
    assert 'type="checkbox" name="db_include" value="reporting"' in page
    safety = page.split('name="safety_backup"')[1][:40]
    assert "checked" in safety


def test_an_in_place_restore_needs_confirmation_and_a_reachable_point(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    repo.backups.update(databases=["hippo", "reporting"])
    point = {"kind": "time", "date": "2026-11-24", "clock": "09:30:00", "zone": "UTC",
             "safety_backup": "on"}
    r = client.post(BASE + "restore/", {**point, "confirm": "nope"}, **hx)
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    r = client.post(BASE + "restore/", {**point, "confirm": "hippo "}, **hx)
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    late = client.post(BASE + "restore/", {**point, "clock": "11:00:00", "confirm": "hippo"},
                       **hx)
    assert late.status_code == 422 and "is after the last archived WAL" in late.content.decode()
    typo = client.post(BASE + "restore/", {**point, "confirm": "hippo", "db_include": "hipo"},
                       **hx)
    assert typo.status_code == 422 and 'id="error-db_include"' in typo.content.decode()
    assert not Operation.objects.exists()
    ok = client.post(BASE + "restore/", {**point, "confirm": "hippo", "db_include": "reporting"},
                     **hx)
    op = Operation.objects.get()
    assert ok["HX-Redirect"] == op.get_absolute_url()
    assert (op.kind, op.params["db_include"]) == ("restore_database", ["reporting"])
    assert op.params["safety_backup"] is True


@pytest.mark.parametrize("path", ["restore/", "standby/", "promote/", "shutdown/", "start/"])
def test_junk_is_never_a_500(client: Client, repo: Repository, hx, path: str) -> None:  # type: ignore[no-untyped-def]
    for data in ({}, {"kind": "x", "confirm": "\\x00" * 100}, {"name": "a" * 999, "repo": "r"},
                 {"kind": "time", "date": "bad", "clock": "bad", "zone": "Nowhere"}):
        assert client.post(BASE + path, data, **hx).status_code in (200, 422)
