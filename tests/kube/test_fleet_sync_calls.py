"""A kubernetes fleet sync lists once per namespace, whatever the number of clusters, and asks
pgBackRest (two execs in the leader pod) only about the clusters whose backups may have
changed: new ones, those whose status.pgbackrest moved, those with an operation running, and
those whose stored answer is DR_REPO_MAX_AGE old. Those questions run DR_SYNC_CONCURRENCY at
a time; the database is written by the sync's own thread."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from restores import inventory
from restores.models import Backup, Cluster, Operation
from tests.factories import OperationFactory
from tests.kube.apiserver import KubeServer
from tests.kube.emulator import BACKUP_ANN, CLUSTER
from tests.kube.fixtures import NS, Console, KubeApi

pytestmark = pytest.mark.django_db

Hippo = Callable[..., dict[str, Any]]


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
