"""The inventory sync: what it adds, keeps and drops, when it reads the repos again; on
Kubernetes, what it asks the API for (calls that do not grow with the fleet) and the conditions
and warnings it keeps."""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from restores import inventory, tasks
from restores.models import Backup, Cluster, Operation, Repository
from restores.platforms.base import WARNINGS_KEPT, TransientError
from restores.selectors.clusters import cluster_fingerprints
from restores.services import dispatch
from tests.factories import OperationFactory
from tests.fakes import T0, FakePlatform, make_backup
from tests.kube.apiserver import KubeServer
from tests.kube.emulator import BACKUP_ANN, CLUSTER
from tests.kube.fixtures import NS, S3_REPO, Console, KubeApi

pytestmark = pytest.mark.django_db
Hippo = Callable[..., dict[str, Any]]


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


def test_only_one_inventory_sync_of_a_platform_runs_at_a_time(fake: FakePlatform, settings,  # type: ignore[no-untyped-def]
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


def test_the_inventory_sync_fills_the_fleet_from_the_api(console: Console, kube_api, hippo_manifest,
                                                          dispatched) -> None:  # type: ignore[no-untyped-def]
    emu = console.emu
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.create_cluster(NS, hippo_manifest("sb", backups={"pgbackrest": {"repos": [S3_REPO]}},
                                      standby={"enabled": True, "repoName": "repo1"}))
    kube_api.create_cluster(NS, hippo_manifest("stopped"))
    emu.settle()
    kube_api.patch_cluster(NS, "stopped", {"spec": {"shutdown": True}})
    emu.settle()
    emu.deferred.add("fresh")  # PGO has not got to it yet
    kube_api.create_cluster(NS, hippo_manifest("fresh"))

    result = console.sync()

    fleet = {c.name: (c.role, c.state) for c in Cluster.objects.filter(platform="kubernetes")}
    assert fleet == {
        "hippo": ("primary", "ready"),
        "sb": ("standby", "standby"),
        "stopped": ("shutdown", "stopped"),
        "fresh": ("unknown", "bootstrapping"),
    }
    assert result.clusters == 4
    # No running leader to ask pgBackRest: reported, not fatal.
    assert sorted(e.split(":")[0] for e in result.errors) == ["db/fresh", "db/stopped"]
    hippo_row = console.cluster("hippo")
    assert hippo_row.pg_version == "16" and hippo_row.present
    assert hippo_row.connect_hint.startswith("kubectl -n db exec -it -c database")
    [repo] = hippo_row.repositories.all()
    assert (repo.name, repo.kind, repo.status_code) == ("repo1", "posix", 0)
    # The replica-create backup PGO took, as `pgbackrest info` (exec'd in the leader) lists it.
    [taken] = emu.backups[(NS, "hippo")]
    [backup] = repo.backups.all()
    assert (backup.label, backup.type) == (taken["label"], "full")
    assert repo.earliest_recovery is not None and repo.latest_recovery > repo.earliest_recovery
    execs = [r for r in console.server.requests if r.resource == "pods/exec"]
    assert execs and {r.namespace for r in execs} == {NS}

    # Deleted on the server: kept for its history, marked absent.
    kube_api.delete_cluster(NS, "fresh")
    console.sync()
    assert console.cluster("fresh").present is False
    assert dispatched == []


def _fleet(console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
           names: list[str]) -> None:
    for name in names:
        kube_api.create_cluster(NS, hippo_manifest(name))
    console.emu.settle()


def _reads(server: KubeServer) -> dict[str, int]:
    """List and get calls of the last sync, by "verb resource" (execs apart)."""
    return {f"{verb} {resource}": n for (verb, resource), n in server.calls.items()
            if verb in ("list", "get") and resource != "pods/exec"}


def _execs(server: KubeServer) -> Counter[str]:
    """Execs since the last reset_calls(), by the cluster of the pod they ran in."""
    owner = {p["metadata"]["name"]: p["metadata"]["labels"].get(CLUSTER, "")
             for p in server.store.list("pods", NS)}
    return Counter(owner[r.name] for r in server.requests if r.resource == "pods/exec")


def _sync(console: Console) -> inventory.SyncResult:
    console.server.reset_calls()
    result = console.sync()
    assert result.errors == []
    return result


def _back_up(kube_api: KubeApi, name: str, backup_id: str) -> None:
    """A manual backup started outside the console (kubectl annotate), as PGO runs it."""
    kube_api.patch_cluster(NS, name, {
        "metadata": {"annotations": {BACKUP_ANN: backup_id}},
        "spec": {"backups": {"pgbackrest": {"manual": {"repoName": "repo1",
                                                       "options": ["--type=incr"]}}}},
    })


def test_list_and_get_calls_do_not_grow_with_the_fleet(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    _fleet(console, kube_api, hippo_manifest, [f"a{n}" for n in range(3)])
    _sync(console)
    small = _reads(console.server)
    _fleet(console, kube_api, hippo_manifest, [f"b{n}" for n in range(9)])  # 12 in all
    result = _sync(console)
    assert _reads(console.server) == small
    assert small == {"list postgresclusters": 1, "list pods": 1, "list events": 1}
    # Only the nine new clusters were asked: pgbackrest info, and repo-ls for the window.
    assert result.repos_read == 9
    assert _execs(console.server) == {f"b{n}": 2 for n in range(9)}


def test_a_steady_state_sync_makes_no_exec(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    _fleet(console, kube_api, hippo_manifest, [f"pg{n}" for n in range(6)])
    first = _sync(console)
    assert (first.clusters, first.repos_read) == (6, 6)
    assert sum(_execs(console.server).values()) == 12
    stored = {c.name: c.repos_synced_at for c in Cluster.objects.filter(platform="kubernetes")}

    again = _sync(console)

    assert (again.clusters, again.repos_read) == (6, 0)
    assert _execs(console.server) == {}
    assert _reads(console.server) == {"list postgresclusters": 1, "list pods": 1, "list events": 1}
    rows = Cluster.objects.filter(platform="kubernetes")
    assert {c.name: c.repos_synced_at for c in rows} == stored  # not read, not stamped
    assert all(c.present for c in rows)


def test_a_finished_backup_makes_exactly_that_clusters_execs(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    _fleet(console, kube_api, hippo_manifest, [f"pg{n}" for n in range(5)])
    _sync(console)
    console.emu.hold_jobs = True
    _back_up(kube_api, "pg3", "nightly-1")
    console.emu.settle()  # status.pgbackrest.manualBackup: {id: nightly-1, finished: false}

    started = _sync(console)

    assert started.repos_read == 1 and _execs(console.server) == {"pg3": 2}
    console.emu.hold_jobs = False
    console.emu.settle()  # the Job ends; PGO copies it into manualBackup, finished: true

    done = _sync(console)

    assert (done.repos_read, done.backups_added) == (1, 1)
    assert _execs(console.server) == {"pg3": 2}
    types = Backup.objects.filter(repository__cluster__name="pg3").values_list("type", flat=True)
    assert sorted(types) == ["full", "incr"]
    assert _sync(console).repos_read == 0  # and then nothing until the next change


def test_an_inventory_older_than_the_max_age_is_asked_again(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo, settings: Any,
) -> None:
    settings.DR_REPO_MAX_AGE = 300
    _fleet(console, kube_api, hippo_manifest, [f"pg{n}" for n in range(4)])
    _sync(console)
    old = timezone.now() - dt.timedelta(seconds=301)
    Cluster.objects.filter(name="pg1").update(repos_synced_at=old)

    result = _sync(console)

    assert result.repos_read == 1 and _execs(console.server) == {"pg1": 2}
    assert timezone.now() - console.cluster("pg1").repos_synced_at < dt.timedelta(seconds=60)
    settings.DR_REPO_MAX_AGE = 0  # every cluster, every sync (the behaviour before)
    assert _sync(console).repos_read == 4


def test_clusters_read_together_come_due_over_several_syncs(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo, settings: Any,
) -> None:
    settings.DR_REPO_MAX_AGE = 300
    _fleet(console, kube_api, hippo_manifest, [f"pg{n}" for n in range(12)])
    _sync(console)
    read: list[int] = []
    for _ in range(5):  # a minute passes before each sync
        Cluster.objects.filter(platform="kubernetes").update(
            repos_synced_at=F("repos_synced_at") - dt.timedelta(seconds=60))
        read.append(_sync(console).repos_read)
    assert read[:2] == [0, 0]  # none before half the max age
    # Each once by the max age, never all of them in the same sync.
    assert sum(read) == 12 and max(read) < 12


def test_a_cluster_with_an_operation_running_is_read_every_sync(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    _fleet(console, kube_api, hippo_manifest, ["pg0", "pg1"])
    _sync(console)
    OperationFactory(cluster=console.cluster("pg1"), status=Operation.Status.RUNNING)

    for _ in range(2):
        assert _sync(console).repos_read == 1
        assert _execs(console.server) == {"pg1": 2}


def test_a_failed_read_is_reported_and_asked_again(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    _fleet(console, kube_api, hippo_manifest, ["pg0", "pg1", "pg2"])
    [pod] = console.server.store.list("pods", NS, label_selector=f"{CLUSTER}=pg1")
    console.server.faults.error(500, resource="pods/exec", path=pod["metadata"]["name"])
    console.server.reset_calls()

    first = console.sync()

    assert [e.split(":")[0] for e in first.errors] == ["db/pg1"]
    assert (first.repos_read, Cluster.objects.filter(repos_fingerprint="").count()) == (3, 1)
    again = _sync(console)
    assert again.repos_read == 1 and _execs(console.server) == {"pg1": 2}
    assert console.cluster("pg1").repositories.count() == 1


def test_reads_run_concurrently_within_the_bound_and_write_in_the_callers_thread(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo, settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.DR_SYNC_CONCURRENCY = 3
    _fleet(console, kube_api, hippo_manifest, [f"pg{n}" for n in range(8)])
    answer = console.server.exec_handler
    running, peak, lock = [0], [0], threading.Lock()

    def slow_exec(*args: Any) -> tuple[int, str, str]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.1)  # an exec against a real API server takes 100-300 ms
            return answer(*args)
        finally:
            with lock:
                running[0] -= 1

    console.server.exec_handler = slow_exec
    writers: list[threading.Thread] = []
    store = inventory.repos_store

    def recording_store(**kwargs: Any) -> tuple[int, int]:
        writers.append(threading.current_thread())
        return store(**kwargs)

    monkeypatch.setattr(inventory, "repos_store", recording_store)

    result = _sync(console)

    assert result.repos_read == 8 and peak[0] == 3
    assert set(writers) == {threading.current_thread()}


def test_a_cluster_without_backups_is_not_asked(
    console: Console, kube_api: KubeApi, hippo_manifest: Hippo,
) -> None:
    body = hippo_manifest("plain")
    del body["spec"]["backups"]  # optional since PGO 5.7
    kube_api.create_cluster(NS, body)
    console.emu.settle()

    result = _sync(console)

    assert result.repos_read == 1 and _execs(console.server) == {}
    assert console.cluster("plain").repos_fingerprint != ""
    assert _sync(console).repos_read == 0


def _event(console: Console, cluster: str, reason: str, *, at: str, type: str = "Warning",
           count: int = 1) -> None:
    involved = console.server.store.get("postgresclusters", NS, cluster)
    assert involved is not None
    event = console.server.store.record_event(involved, reason, f"{reason} on {cluster}",
                                              type=type)
    console.server.store.patch("events", NS, event["metadata"]["name"],
                               {"lastTimestamp": at, "count": count})


def test_the_sync_keeps_conditions_and_the_newest_warnings(console: Console, kube_api,
                                                           hippo_manifest,
                                                            admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.create_cluster(NS, hippo_manifest("other"))
    console.emu.settle()
    for n in range(7):  # oldest first
        _event(console, "hippo", f"Warn{n}", at=f"2026-11-25T01:0{n}:00Z", count=n + 1)
    _event(console, "hippo", "Quiet", at="2026-11-25T01:59:00Z", type="Normal")
    _event(console, "other", "Elsewhere", at="2026-11-25T01:58:00Z")

    assert console.sync().errors == []

    row = console.cluster("hippo")
    assert [w["reason"] for w in row.warnings] == ["Warn6", "Warn5", "Warn4", "Warn3", "Warn2"]
    assert len(row.warnings) == WARNINGS_KEPT
    assert row.warnings[0] == {"reason": "Warn6", "message": "Warn6 on hippo",
                               "at": "2026-11-25T01:06:00+00:00", "count": 7}
    assert [w["reason"] for w in console.cluster("other").warnings] == ["Elsewhere"]
    status = console.obj("hippo")["status"]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in row.conditions] == [
        (c["type"], c["status"], c.get("reason", "")) for c in status]
    assert row.conditions, "the emulator's PGO writes conditions"

    page = html.unescape(admin_client.get(row.get_absolute_url()).content.decode())
    assert "Recent warnings" in page
    assert "Warn6</strong>: Warn6 on hippo" in page and "×7" in page
    assert "Warn1" not in page and "Quiet" not in page  # older than the five, and Normal
    assert 'id="cluster-conditions"' in page and status[0]["type"] in page
    assert 'id="cluster-conditions" open' not in page  # ready: folded

    # A sync that finds nothing new leaves the page's status fingerprint as it was.
    before = cluster_fingerprints(Cluster.objects.get(pk=row.pk)).status
    console.sync()
    assert cluster_fingerprints(Cluster.objects.get(pk=row.pk)).status == before
    _event(console, "hippo", "Newer", at="2026-11-25T02:00:00Z")
    console.sync()
    after = Cluster.objects.get(pk=row.pk)
    assert after.warnings[0]["reason"] == "Newer"
    assert cluster_fingerprints(after).status != before
