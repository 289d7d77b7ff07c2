"""KubernetesPlatform, manual backups (§3.1, §9) and the API's failure modes: conflicts,
errors, timeouts, a worker killed between the patch and the status, annotations PGO never
consumes; and that every request the platform makes is one deploy/rbac.yaml allows."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from restores.platforms.base import ClusterRef, PermanentError, TransientError
from restores.platforms.kubernetes import KubernetesPlatform
from tests.kube.emulator import BACKUP_ANN, drive
from tests.kube.fixtures import make_platform

NS = "db"
HIPPO = ClusterRef(NS, "hippo")


@pytest.fixture
def platform(kube_server, emu, clock) -> KubernetesPlatform:
    return make_platform(kube_server, clock)


@pytest.fixture
def hippo_ready(kube_api, hippo_manifest, emu) -> None:
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()


def backup(platform, op="op-1", backup_type="full"):
    return platform.backup_start(HIPPO, repo="repo1", backup_type=backup_type, operation_id=op)


def status(platform, op="op-1"):
    return platform.backup_status(HIPPO, repo="repo1", operation_id=op)


def test_it_backs_up_with_one_patch_and_follows_pgos_status(platform, kube_server, kube_api,
                                                            emu, hippo_ready):
    kube_server.reset_calls()
    applied = backup(platform, backup_type="diff")
    assert "annotation postgres-operator.crunchydata.com/pgbackrest-backup=op-1" in applied.summary
    assert kube_server.calls[("patch", "postgresclusters")] == 1
    obj = kube_api.get_cluster(NS, "hippo")
    assert obj["metadata"]["annotations"][BACKUP_ANN] == "op-1"
    assert obj["spec"]["backups"]["pgbackrest"]["manual"] == {
        "repoName": "repo1", "options": ["--type=diff", "--annotation=dr-console-operation=op-1"]}
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert "dr-console" in managers
    assert status(platform).state == "running"
    [job] = kube_api.batch.list_namespaced_job(
        NS, label_selector=f"{BACKUP_ANN}=manual").items
    assert job.metadata.annotations[BACKUP_ANN] == "op-1"
    done = drive(lambda: status(platform), emu)
    assert done.state == "succeeded"
    [repo] = platform.repos(HIPPO)
    assert done.result == {"label": repo.backups[-1].label}
    assert repo.backups[-1].type == "diff"


def test_it_never_sends_the_same_backup_twice(platform, kube_server, emu, hippo_ready):
    backup(platform)
    again = backup(platform)
    assert again.summary.startswith("PGO was already asked")
    assert kube_server.calls[("patch", "postgresclusters")] == 1


def test_a_new_worker_continues_without_a_second_annotation(kube_server, emu, clock,
                                                            hippo_ready):
    """Killed between the patch and seeing the status: a fresh platform instance (a new
    process) running the same operation changes nothing, then sees it finish."""
    first = make_platform(kube_server, clock)
    backup(first)
    del first
    fresh = make_platform(kube_server, clock)
    backup(fresh)
    assert drive(lambda: status(fresh), emu).state == "succeeded"
    assert [v for _, key, v in emu.trigger_values if key == BACKUP_ANN] == ["op-1"]
    assert kube_server.calls[("patch", "postgresclusters")] == 1


def test_it_refuses_a_standby(platform, kube_api, hippo_manifest, emu):
    backups = {"pgbackrest": {"repos": [{"name": "repo1", "s3": {
        "bucket": "b", "endpoint": "e", "region": "r"}}]}}
    kube_api.create_cluster(NS, hippo_manifest(backups=backups, standby={"repoName": "repo1"}))
    emu.settle()
    with pytest.raises(PermanentError, match="hippo is a standby: PGO runs manual backups"):
        backup(platform)
    assert BACKUP_ANN not in (kube_api.get_cluster(NS, "hippo")["metadata"].get(
        "annotations") or {})


def test_it_refuses_a_repo_the_cluster_does_not_have(platform, hippo_ready):
    with pytest.raises(PermanentError, match="hippo has no repo repo2"):
        platform.backup_start(HIPPO, repo="repo2", backup_type="full", operation_id="op-1")


def test_it_reports_a_failed_backup_job(platform, emu, hippo_ready):
    emu.fail_backup.add("hippo")
    backup(platform)
    done = drive(lambda: status(platform), emu)
    assert done.state == "failed"
    assert "kubectl -n db logs job/hippo-backup-" in done.message


def test_an_annotation_pgo_never_consumes_is_reported_stuck(platform, clock, emu, hippo_ready):
    emu.stuck.add("hippo")
    backup(platform)
    emu.settle()
    waiting = status(platform)
    assert waiting.state == "pending"
    assert waiting.message == "Waiting for PGO to start the backup Job (PGO has not picked up " \
        "the annotation)."
    clock.now += dt.timedelta(seconds=61)
    stuck = status(platform)
    assert stuck.state == "failed"
    assert stuck.message.startswith("PGO has not started the backup after 61 s")
    assert "Fix: check that PGO is running and watching this namespace" in stuck.message


def test_it_waits_while_another_manual_backup_runs(platform, emu, hippo_ready):
    emu.hold_jobs = True
    backup(platform, op="op-1")
    emu.tick()
    with pytest.raises(TransientError, match=r"Another manual backup \(op-1\) is still running"):
        backup(platform, op="op-2")


def test_it_retries_a_conflicting_patch_against_a_fresh_object(platform, kube_server,
                                                               kube_api, emu, hippo_ready):
    kube_server.faults.error(409, verb="patch", resource="postgresclusters")
    backup(platform)
    assert kube_server.calls[("patch", "postgresclusters")] == 2
    assert kube_server.calls[("get", "postgresclusters")] == 2
    assert kube_api.get_cluster(NS, "hippo")["metadata"]["annotations"][BACKUP_ANN] == "op-1"


def test_a_cluster_changed_meanwhile_is_read_again(platform, kube_server, kube_api, emu,
                                                   hippo_ready):
    """A real conflict: another writer changes the cluster between the platform's read and
    its conditional patch (held back by the server for a moment)."""
    kube_server.faults.hang(0.3, verb="patch", resource="postgresclusters")

    def meddle() -> None:
        deadline = time.monotonic() + 5
        while not kube_server.calls[("patch", "postgresclusters")]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        kube_server.store.patch("postgresclusters", NS, "hippo",
                                {"metadata": {"labels": {"team": "a"}}})

    thread = threading.Thread(target=meddle)
    thread.start()
    backup(platform)
    thread.join(5)
    obj = kube_api.get_cluster(NS, "hippo")
    assert obj["metadata"]["annotations"][BACKUP_ANN] == "op-1"
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert kube_server.calls[("patch", "postgresclusters")] == 2


def test_server_errors_and_timeouts_are_transient(kube_server, kube_api, emu, clock,
                                                  hippo_ready):
    platform = make_platform(kube_server, clock, timeout=0.5)
    kube_server.faults.error(500, verb="list", resource="postgresclusters")
    with pytest.raises(TransientError, match="HTTP 500"):
        platform.clusters()
    assert [s.state for s in platform.clusters()] == ["ready"]

    kube_server.faults.add(hang=1.0, drop=True, verb="patch", resource="postgresclusters")
    with pytest.raises(TransientError, match="did not answer"):
        backup(platform)
    assert BACKUP_ANN not in (kube_api.get_cluster(NS, "hippo")["metadata"].get(
        "annotations") or {})
    backup(platform)  # the reconcile loop's retry
    assert drive(lambda: status(platform), emu).state == "succeeded"
    assert [v for _, key, v in emu.trigger_values if key == BACKUP_ANN] == ["op-1"]


def test_forbidden_is_permanent_and_names_the_rbac(platform, kube_server, hippo_ready):
    kube_server.faults.error(403, verb="get", resource="postgresclusters")
    with pytest.raises(PermanentError, match=r"Apply deploy/rbac\.yaml"):
        platform.cluster_status(HIPPO)
