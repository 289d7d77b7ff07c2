"""inventory: the console's copy of clusters, repos and backups follows the platform."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from restores import inventory, tasks
from restores.models import Backup, Cluster, Repository
from restores.platforms.base import TransientError
from restores.services import dispatch
from tests.fakes import T0, FakePlatform, make_backup

pytestmark = pytest.mark.django_db


def test_it_adds_clusters_repos_and_backups(fake: FakePlatform) -> None:
    fake.add("hippo", backups=[make_backup("20261124-090000F", stop=T0)])
    fake.add("rhino", role="shutdown")
    result = inventory.platform_sync(platform_name="local")
    assert (result.clusters, result.backups_added) == (2, 1)
    hippo = Cluster.objects.get(name="hippo")
    assert (hippo.role, hippo.pg_version, hippo.connect_hint) == ("primary", "15.20", "psql hippo")
    repo = Repository.objects.get(cluster=hippo)
    assert repo.earliest_recovery == T0
    assert repo.latest_wal == "000000010000000000000009"
    assert Cluster.objects.get(name="rhino").role == "shutdown"


def test_running_it_twice_changes_nothing(fake: FakePlatform) -> None:
    fake.add("hippo", backups=[make_backup("20261124-090000F")])
    inventory.platform_sync(platform_name="local")
    again = inventory.platform_sync(platform_name="local")
    assert (again.backups_added, again.backups_removed) == (0, 0)
    assert Backup.objects.count() == 1


def test_it_drops_expired_backups_and_marks_vanished_clusters(fake: FakePlatform) -> None:
    hippo = fake.add("hippo", backups=[make_backup("20261124-090000F"),
                                       make_backup("20261124-100000F")])
    fake.add("gone")
    inventory.platform_sync(platform_name="local")
    hippo.backups.pop(0)  # expired by retention
    del fake.clusters_["gone"]
    result = inventory.platform_sync(platform_name="local")
    assert result.backups_removed == 1
    assert list(Backup.objects.values_list("label", flat=True)) == ["20261124-100000F"]
    assert Cluster.objects.get(name="gone").present is False


def test_a_cluster_whose_repos_fail_keeps_what_was_seen(
    fake: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add("hippo", backups=[make_backup("20261124-090000F")])
    inventory.platform_sync(platform_name="local")

    def broken(ref):  # type: ignore[no-untyped-def]
        raise TransientError("repo unreachable")

    monkeypatch.setattr(fake, "repos", broken)
    result = inventory.platform_sync(platform_name="local")
    assert result.errors == ["local/hippo: repo unreachable"]
    assert Backup.objects.count() == 1


def test_a_platform_without_fingerprints_is_asked_about_every_cluster_every_sync(
    fake: FakePlatform,
) -> None:
    for name in ("hippo", "rhino", "zebra"):
        fake.add(name, backups=[make_backup("20261124-090000F")])
    assert inventory.platform_sync(platform_name="local").repos_read == 3
    assert inventory.platform_sync(platform_name="local").repos_read == 3


def test_an_unchanged_fingerprint_skips_the_repos_until_the_max_age(
    fake: FakePlatform, settings: Any,
) -> None:
    settings.DR_REPO_MAX_AGE = 300
    hippo = fake.add("hippo", backups=[make_backup("20261124-090000F")], fingerprint="a")
    fake.add("rhino", fingerprint="b")
    inventory.platform_sync(platform_name="local")
    hippo.backups.append(make_backup("20261124-100000F"))  # not in the fingerprint: unseen

    assert inventory.platform_sync(platform_name="local").repos_read == 0
    assert Backup.objects.count() == 1
    hippo.fingerprint = "a2"  # the platform's status says the backups changed
    result = inventory.platform_sync(platform_name="local")
    assert (result.repos_read, result.backups_added) == (1, 1)
    Cluster.objects.filter(name="rhino").update(
        repos_synced_at=timezone.now() - dt.timedelta(seconds=300))
    assert inventory.platform_sync(platform_name="local").repos_read == 1


def test_a_steady_state_sync_makes_the_same_queries_for_any_fleet(fake: FakePlatform) -> None:
    def steady_queries(names: list[str]) -> int:
        for name in names:
            fake.add(name, backups=[make_backup("20261124-090000F")], fingerprint=name)
        inventory.platform_sync(platform_name="local")
        with CaptureQueriesContext(connection) as queries:
            result = inventory.platform_sync(platform_name="local")
        assert result.repos_read == 0
        return len(queries)

    assert steady_queries(["a0", "a1"]) == steady_queries([f"b{n}" for n in range(10)])


def test_a_changed_status_is_written_without_reading_the_repos(fake: FakePlatform) -> None:
    rhino = fake.add("rhino", fingerprint="x")
    inventory.platform_sync(platform_name="local")
    rhino.role = "shutdown"
    result = inventory.platform_sync(platform_name="local")
    assert result.repos_read == 0
    assert Cluster.objects.get(name="rhino").role == "shutdown"


def test_a_single_cluster_sync_reads_the_repos_and_counts_as_fresh(fake: FakePlatform) -> None:
    hippo = fake.add("hippo", backups=[make_backup("20261124-090000F")], fingerprint="a")
    inventory.platform_sync(platform_name="local")
    Cluster.objects.update(repos_synced_at=timezone.now() - dt.timedelta(hours=1))
    hippo.backups.append(make_backup("20261124-100000F"))

    inventory.cluster_sync(cluster=Cluster.objects.get(name="hippo"))

    assert Backup.objects.count() == 2
    assert inventory.platform_sync(platform_name="local").repos_read == 0


def test_a_page_asks_for_a_sync_unless_the_repos_were_just_read(
    fake: FakePlatform, dispatched: list[str],
) -> None:
    fake.add("hippo", fingerprint="a")
    inventory.platform_sync(platform_name="local")
    hippo = Cluster.objects.get(name="hippo")
    dispatch.cluster_sync_soon(hippo)
    assert dispatched == []
    # The status was written a moment ago, the repos long ago: a sync is due.
    Cluster.objects.update(synced_at=timezone.now(),
                           repos_synced_at=timezone.now() - dt.timedelta(minutes=4))
    dispatch.cluster_sync_soon(Cluster.objects.get(name="hippo"))
    assert dispatched == ["restores.sync_cluster"]


def test_backups_another_sync_stored_meanwhile_are_reported_not_fatal(
    fake: FakePlatform, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.add("hippo", backups=[make_backup("20261124-090000F")], fingerprint="a")
    fake.add("rhino", backups=[make_backup("20261124-090000F")], fingerprint="b")
    store = inventory.repos_store

    def racing(*, cluster: Cluster, **kwargs: Any) -> tuple[int, int]:
        if cluster.name == "hippo":
            raise IntegrityError("duplicate key value violates unique constraint")
        return store(cluster=cluster, **kwargs)

    monkeypatch.setattr(inventory, "repos_store", racing)
    result = inventory.platform_sync(platform_name="local")
    assert result.errors == [f"local/hippo: {inventory.STORED_MEANWHILE}"]
    assert result.backups_added == 1
    monkeypatch.setattr(inventory, "repos_store", store)
    assert inventory.platform_sync(platform_name="local").repos_read == 1  # hippo again


def test_a_cluster_that_comes_back_is_read_again(fake: FakePlatform) -> None:
    fake.add("hippo", fingerprint="a")
    inventory.platform_sync(platform_name="local")
    gone = fake.clusters_.pop("hippo")
    inventory.platform_sync(platform_name="local")
    fake.clusters_["hippo"] = gone  # recreated under the same name
    assert inventory.platform_sync(platform_name="local").repos_read == 1


def test_one_inventory_sync_of_a_platform_at_a_time(fake: FakePlatform, settings,  # type: ignore[no-untyped-def]
                                                    monkeypatch) -> None:
    """A second beat while a long first sync still runs skips the platform instead of
    reading every cluster again; the lock is released after each sync."""
    settings.DR_PLATFORMS = ["local"]
    synced: list[str] = []
    monkeypatch.setattr(inventory, "platform_sync",
                        lambda *, platform_name: synced.append(platform_name))
    held = tasks.sync_lock("local")
    assert held.acquire()
    try:
        tasks.sync_inventory()
        assert synced == []
    finally:
        held.release()
    tasks.sync_inventory()
    tasks.sync_inventory()
    assert synced == ["local", "local"]
    assert tasks.sync_lock("local").locked() is False
