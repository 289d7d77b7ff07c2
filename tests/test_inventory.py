"""inventory: the console's copy of clusters, repos and backups follows the platform."""

from __future__ import annotations

import pytest

from restores import inventory
from restores.models import Backup, Cluster, Repository
from restores.platforms.base import TransientError
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
