"""The in-place restore's pages: the exact typed name, what the review says the restore costs, the
safety backup turned off on the record."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from restores.models import Cluster, Operation, Repository
from tests.actions import request_in_place_restore
from tests.factories import OperationFactory, user_with_role
from tests.fakes import FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db
BASE = "/clusters/local/local/hippo/"


def test_the_restore_form_keeps_a_trailing_space_and_refuses_it(hippo_row: Cluster) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    r = client.post(hippo_row.get_absolute_url() + "restore/",
                    {"kind": "latest", "confirm": "hippo ", "safety_backup": "on"})
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    assert not Operation.objects.exists()


def test_turning_the_backup_off_is_recorded(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_in_place_restore(hippo_row, safety_backup=False)
    assert op.params["safety_backup"] is False
    assert "Without a backup of the current state first" in op.events.get().message
    assert run_step(op).step == "running" and fake.started == []


def test_the_review_says_the_cluster_goes_down_for_how_long_and_what_is_lost(
    hippo_row: Cluster
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(hippo_row.get_absolute_url() + "restore/").content.decode()
    assert 'id="restore-review"' in page
    assert "<strong>goes down</strong>" in page and 'id="downtime-estimate"' in page
    assert "every change made after\n      the point is lost" in page
    assert "unless you keep the backup taken first" in page
    OperationFactory(cluster=hippo_row, kind="restore_in_place", status="succeeded",
                     finished_at=timezone.now(), result={"downtime_seconds": "74.0"})
    page = client.get(hippo_row.get_absolute_url() + "restore/").content.decode()
    assert "1 min 14 s" in page and "the last in-place restore of hippo" in page


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
