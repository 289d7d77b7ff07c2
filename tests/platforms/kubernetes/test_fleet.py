"""KubernetesPlatform, the fleet: state of each kind of cluster (§9), repos through pod exec,
a thousand clusters with a constant number of requests, and the watch."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time

import pytest

from restores.platforms.base import ClusterRef, PermanentError, TransientError
from restores.platforms.kubernetes import watch_clusters
from restores.platforms.kubernetes.api import USER_AGENT

NS = "db"
HIPPO = ClusterRef(NS, "hippo")
SECOND = dt.timedelta(seconds=1)
S3_REPO = {"name": "repo1", "s3": {"bucket": "b", "endpoint": "s3.example", "region": "r"}}


@pytest.fixture
def hippo_ready(kube_api, hippo_manifest, emu) -> dict:
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()
    return kube_api.get_cluster(NS, "hippo")


def state_of(platform, name="hippo"):
    status = platform.cluster_status(ClusterRef(NS, name))
    return status.role, status.state, status.message


def test_it_reports_a_new_cluster_as_bootstrapping_then_ready(platform, kube_api, hippo_manifest,
                                                              emu):
    kube_api.create_cluster(NS, hippo_manifest())
    role, word, message = state_of(platform)
    assert (role, word) == ("unknown", "bootstrapping")
    assert "0 of 1 ready" in message
    emu.settle()
    status = platform.cluster_status(HIPPO)
    assert (status.role, status.state, status.pg_version, status.repos) == (
        "primary", "ready", "16", ("repo1",))
    assert status.connect_hint.startswith("kubectl -n db exec -it -c database")
    assert [s.state for s in platform.clusters()] == ["ready"]


def test_it_reports_a_restore_with_pgos_phase_message(platform, kube_api, hippo_manifest, emu,
                                                      hippo_ready):
    emu.hold_jobs = True
    kube_api.create_cluster(NS, hippo_manifest("copy", dataSource={"postgresCluster": {
        "clusterName": "hippo", "repoName": "repo1"}}))
    emu.tick()
    assert state_of(platform, "copy") == (
        "unknown", "restoring",
        "Restoring: Restoring cluster in-place (Job copy-pgbackrest-restore running)")


def test_it_reports_a_missing_clone_source_with_pgos_event(platform, kube_api, hippo_manifest, emu):
    kube_api.create_cluster(NS, hippo_manifest("copy", dataSource={"postgresCluster": {
        "clusterName": "gone", "repoName": "repo1"}}))
    role, word, message = state_of(platform, "copy")
    assert (role, word) == ("unknown", "failed")
    assert message == 'PGO refused the data source: PostgresCluster "gone" does not exist'
    assert [(s.ref.name, s.state) for s in platform.clusters()] == [("copy", "failed")]


def test_it_reports_a_failed_restore_job(platform, kube_api, hippo_manifest, emu, hippo_ready):
    emu.fail_restore.add("copy")
    kube_api.create_cluster(NS, hippo_manifest("copy", dataSource={"postgresCluster": {
        "clusterName": "hippo", "repoName": "repo1"}}))
    emu.settle()
    _role, word, message = state_of(platform, "copy")
    assert word == "failed"
    assert "copy-pgbackrest-restore failed (PGO: PGBackRestRestoreFailed)" in message


def test_it_reports_stopping_then_stopped(platform, kube_api, emu, hippo_ready):
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    assert state_of(platform)[:2] == ("shutdown", "stopping")
    emu.settle()
    assert state_of(platform) == ("shutdown", "stopped",
                                  "Shut down: every instance is scaled to zero.")


def test_it_reports_a_standby_from_spec_and_leader_role(platform, kube_api, hippo_manifest, emu):
    backups = {"pgbackrest": {"repos": [S3_REPO]}}
    kube_api.create_cluster(NS, hippo_manifest("sb", backups=backups,
                                      standby={"enabled": True, "repoName": "repo1"}))
    emu.settle()
    assert state_of(platform, "sb") == ("standby", "standby",
                                        "Ready: a standby, replaying from its primary.")
    leader = kube_api.core.list_namespaced_pod(
        NS, label_selector="postgres-operator.crunchydata.com/cluster=sb,"
        "postgres-operator.crunchydata.com/role=master").items[0]
    assert '"role": "standby_leader"' in leader.metadata.annotations["status"]


def test_it_reports_a_paused_cluster(platform, kube_api, emu, hippo_ready):
    kube_api.patch_cluster(NS, "hippo", {"spec": {"paused": True}})
    assert state_of(platform)[1:] == (
        "paused", "PGO is not reconciling it: No spec changes will be applied and no other "
        "statuses will be updated.")


def test_it_refuses_namespaces_and_clusters_it_does_not_manage(platform):
    with pytest.raises(PermanentError, match="not one the console manages"):
        platform.cluster_status(ClusterRef("elsewhere", "hippo"))
    with pytest.raises(PermanentError, match="no PostgresCluster hippo"):
        platform.cluster_status(HIPPO)
    assert platform.cluster_exists(HIPPO) is False


# -- repos through `pgbackrest info` in the leader pod ------------------------------------------


def test_it_reads_repos_by_exec_in_the_leader_pod(platform, kube_server, emu, hippo_ready):
    platform.backup_start(HIPPO, repo="repo1", backup_type="incr", operation_id="op-1")
    emu.settle()
    [repo] = platform.repos(HIPPO)
    assert (repo.name, repo.kind, repo.status_code) == ("repo1", "posix", 0)
    assert [b.type for b in repo.backups] == ["full", "incr"]
    assert repo.backups[1].annotation("dr-console-operation") == "op-1"
    # the end of the oldest backup (pgbackrest.recoverable_window rounds it up)
    assert dt.timedelta(0) <= repo.window.earliest - repo.backups[0].stopped_at <= SECOND
    # repo-ls dates the newest WAL segment: later than the newest backup's stop
    assert repo.window.latest > repo.backups[-1].stopped_at
    [pod] = kube_server.store.list("pods", NS, label_selector=(
        "postgres-operator.crunchydata.com/cluster=hippo,"
        "postgres-operator.crunchydata.com/role=master"))
    execs = [r for r in kube_server.requests if r.resource == "pods/exec"]
    assert {r.name for r in execs} == {pod["metadata"]["name"]}
    assert {q for r in execs for q in r.query.split("&") if q.startswith("container=")} == {
        "container=database"}


def test_it_answers_a_shut_down_cluster_from_its_cache(platform, kube_api, emu, hippo_ready):
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    emu.settle()
    with pytest.raises(TransientError, match="no running leader pod"):
        platform.repos(HIPPO)  # nothing cached yet
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": False}})
    emu.settle()
    live = platform.repos(HIPPO)
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    emu.settle()
    cached = platform.repos(HIPPO)
    assert [r.backups for r in cached] == [r.backups for r in live]
    assert cached[0].status_message.startswith("ok (cached ")
    assert "hippo has no running pod" in cached[0].status_message


def test_the_fleet_list_and_a_single_read_give_the_same_backups_fingerprint(
    platform, kube_api, hippo_manifest, emu, hippo_ready
):
    """The inventory stores what cluster_status() gives (one cluster's sync) and compares it
    with what clusters() gives (the fleet's): the two must agree on an unchanged cluster."""
    kube_api.create_cluster(NS, hippo_manifest("rhino"))
    emu.settle()
    listed = {s.ref.name: s.fingerprint for s in platform.clusters()}
    assert listed["hippo"] == platform.cluster_status(HIPPO).fingerprint
    assert listed["hippo"] != listed["rhino"]  # each its own leader pod
    platform.backup_start(HIPPO, repo="repo1", backup_type="incr", operation_id="op-1")
    assert platform.cluster_status(HIPPO).fingerprint != listed["hippo"]  # manualBackup.id
    emu.settle()
    done = platform.cluster_status(HIPPO).fingerprint
    assert done != listed["hippo"]
    assert {s.ref.name: s.fingerprint for s in platform.clusters()}["hippo"] == done


def test_it_lists_the_databases_of_a_backup_set(platform, emu, hippo_ready):
    label = platform.repos(HIPPO)[0].backups[0].label
    assert platform.backup_databases(HIPPO, repo="repo1", label=label) == ["app", "other"]
    with pytest.raises(PermanentError, match="has no backup set"):
        platform.backup_databases(HIPPO, repo="repo1", label="20200101-000000F")
    with pytest.raises(PermanentError, match="has no repo repo2"):
        platform.backup_databases(HIPPO, repo="repo2", label=label)


# -- a thousand clusters ------------------------------------------------------------------------


def test_it_syncs_a_thousand_clusters_with_a_constant_number_of_requests(
    platform, kube_server, kube_api, emu, hippo_ready
):
    emu.detach()  # copies of a ready hippo, as PGO left them
    store = kube_server.store
    cluster = store.get("postgresclusters", NS, "hippo")
    [leader] = store.list("pods", NS, label_selector="postgres-operator.crunchydata.com/role")
    for n in range(999):
        name = f"pg{n:04d}"
        copy_ = copy.deepcopy(cluster)
        copy_["metadata"] = {**cluster["metadata"], "name": name, "generation": 1}
        copy_["status"]["observedGeneration"] = 1
        store.put(copy_)
        pod = copy.deepcopy(leader)
        pod["metadata"]["name"] = f"{name}-00-abcd-0"
        pod["metadata"]["labels"]["postgres-operator.crunchydata.com/cluster"] = name
        store.put(pod)
    kube_server.reset_calls()
    fleet = platform.clusters()
    assert len(fleet) == 1000 and {s.state for s in fleet} == {"ready"}
    # The time is the kube_sync benchmark's to report; here, the calls.
    assert kube_server.calls == {("list", "postgresclusters"): 1, ("list", "pods"): 1,
                                 ("list", "events"): 1}


# -- the watch ----------------------------------------------------------------------------------


def _watching(kube_server, **kw):
    seen: list[tuple[str, str, str]] = []
    stop, watches = threading.Event(), []

    def on_event(kind, obj):
        meta = obj["metadata"]
        seen.append((kind, meta["name"], str((obj.get("spec") or {}).get("shutdown"))))

    client = kube_server.api_client()
    client.user_agent = USER_AGENT
    thread = threading.Thread(target=watch_clusters, args=(client, [NS], on_event, stop),
                              kwargs={"watches": watches, **kw})
    thread.start()
    return seen, stop, thread, watches


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_watch_follows_changes_within_seconds(kube_server, kube_api, hippo_manifest):
    seen, stop, thread, _ = _watching(kube_server)
    try:
        _wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] == 1)
        started = time.monotonic()
        kube_api.create_cluster(NS, hippo_manifest())
        kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
        _wait_for(lambda: ("MODIFIED", "hippo", "True") in seen)
        assert time.monotonic() - started < 2
        kube_api.delete_cluster(NS, "hippo")
        _wait_for(lambda: seen[-1][:2] == ("DELETED", "hippo"))
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert kube_server.calls[("list", "postgresclusters")] == 1  # no polling


def test_the_watch_lists_again_after_410_gone(kube_server, kube_api, hippo_manifest):
    kube_server.event_window = 5
    seen, stop, thread, watches = _watching(kube_server, timeout_seconds=1)
    try:
        _wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] == 1)
        kube_server.faults.hang(1.5, verb="watch")  # the next watch request waits...
        _wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] == 2)
        # ...while more changes than the window happen
        kube_api.create_cluster(NS, hippo_manifest())
        for n in range(8):
            kube_api.patch_cluster(NS, "hippo", {"metadata": {"labels": {"n": str(n)}}})
        kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
        _wait_for(lambda: ("ADDED", "hippo", "True") in seen, seconds=10)
    finally:
        stop.set()
        thread.join(10)
    assert watches[0].relists == 2
    assert kube_server.calls[("list", "postgresclusters")] == 2
