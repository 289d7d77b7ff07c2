"""KubernetesPlatform on existing clusters: in-place PITR (§3.6), shutdown and start verified
by the workloads (§3.8, §8.3), standby creation and promotion verified by role (§3.7, §9)."""

from __future__ import annotations

import datetime as dt

import pytest

from restores.platforms.base import (
    ClusterRef,
    InPlaceRestoreRequest,
    PermanentError,
    StandbyRequest,
)
from restores.platforms.kubernetes import KubernetesPlatform
from restores.platforms.targets import RestoreTarget
from tests.kube.emulator import RESTORE_ANN, drive
from tests.kube.fixtures import make_platform

NS = "db"
HIPPO = ClusterRef(NS, "hippo")
STANDBY = ClusterRef(NS, "hippo-standby")
S3_REPO = {"name": "repo1",
           "s3": {"bucket": "hippo-backups", "endpoint": "s3.example", "region": "r"}}
WHEN = dt.datetime(2026, 11, 24, 10, 14, 3, tzinfo=dt.UTC)


@pytest.fixture
def platform(kube_server, emu, clock) -> KubernetesPlatform:
    return make_platform(kube_server, clock)


@pytest.fixture
def hippo_ready(kube_api, hippo_manifest, emu) -> None:
    kube_api.create_cluster(NS, hippo_manifest(backups={"pgbackrest": {"repos": [
        {**S3_REPO, "schedules": {"full": "0 1 * * 0"}}]}}, proxy={"pgBouncer": {}}))
    emu.settle()


def in_place(op="op-r", **kw) -> InPlaceRestoreRequest:
    return InPlaceRestoreRequest(operation_id=op, cluster=HIPPO, repo="repo1",
                                 point=RestoreTarget(kind="time", time=WHEN), **kw)


# -- in-place restore -----------------------------------------------------------------------


def test_it_restores_in_place_and_disables_the_restore(platform, kube_server, kube_api, emu,
                                                       hippo_ready):
    kube_server.reset_calls()
    req = in_place(db_include=("app",))
    first = platform.restore_in_place_advance(req)
    assert first.state == "running" and "it will go down" in first.message
    assert kube_server.calls[("patch", "postgresclusters")] == 1  # ONE patch
    obj = kube_api.get_cluster(NS, "hippo")
    assert obj["metadata"]["annotations"][RESTORE_ANN] == "op-r"
    assert obj["spec"]["backups"]["pgbackrest"]["restore"] == {
        "enabled": True, "repoName": "repo1",
        "options": ['--type=time', '--target="2026-11-24 10:14:03+00"', "--db-include=app"]}
    assert platform.cluster_status(HIPPO).message == (
        "Restoring: Preparing cluster to restore in-place: removing runners")
    done = drive(lambda: platform.restore_in_place_advance(req), emu)
    assert done.state == "succeeded", done
    assert "restore_seconds" in done.result
    obj = kube_api.get_cluster(NS, "hippo")
    assert obj["spec"]["backups"]["pgbackrest"]["restore"]["enabled"] is False
    assert obj["status"]["pgbackrest"]["restore"]["id"] == "op-r"
    assert platform.cluster_status(HIPPO).state == "ready"
    assert [v for _, key, v in emu.trigger_values if key == RESTORE_ANN] == ["op-r"]
    # a fresh worker repeating the operation sends nothing
    again = KubernetesPlatform(namespaces=[NS], api_client=kube_server.api_client())
    patches = kube_server.calls[("patch", "postgresclusters")]
    assert again.restore_in_place_advance(req).state == "succeeded"
    assert kube_server.calls[("patch", "postgresclusters")] == patches


def test_an_in_place_restore_pgo_never_starts_is_reported(platform, clock, emu, hippo_ready):
    emu.stuck.add("hippo")
    req = in_place()
    platform.restore_in_place_advance(req)
    emu.settle()
    assert platform.restore_in_place_advance(req).state == "pending"
    clock.now += dt.timedelta(minutes=5)
    stuck = platform.restore_in_place_advance(req)
    assert stuck.state == "failed"
    assert stuck.message.startswith("PGO has not started the in-place restore after 300 s.")


def test_a_failed_in_place_restore_says_how_to_go_on(platform, emu, hippo_ready):
    emu.fail_restore.add("hippo")
    failed = drive(lambda: platform.restore_in_place_advance(in_place()), emu)
    assert failed.state == "failed"
    assert "kubectl -n db logs job/hippo-pgbackrest-restore" in failed.message


# -- shutdown and start -------------------------------------------------------------------------


def test_it_shuts_down_and_starts_verified_by_the_workloads(platform, kube_api, emu,
                                                           hippo_ready):
    down = platform.power_advance(HIPPO, operation_id="op-s", shutdown=True)
    assert (down.state, down.message) == ("running", "Asked PGO to shut down hippo.")
    assert kube_api.get_cluster(NS, "hippo")["spec"]["shutdown"] is True
    waiting = platform.power_advance(HIPPO, operation_id="op-s", shutdown=True)
    assert waiting.state == "running" and "instance pod(s) still exist" in waiting.message
    done = drive(lambda: platform.power_advance(HIPPO, operation_id="op-s", shutdown=True), emu)
    assert (done.state, done.message) == (
        "succeeded", "hippo is shut down: every workload PGO runs for it is at zero.")
    sets = kube_api.apps.list_namespaced_stateful_set(NS).items
    assert all(s.spec.replicas == 0 for s in sets)
    [cron] = kube_api.batch.list_namespaced_cron_job(NS).items
    assert cron.spec.suspend is True
    [bouncer] = kube_api.apps.list_namespaced_deployment(NS).items
    assert bouncer.spec.replicas == 0

    up = drive(lambda: platform.power_advance(HIPPO, operation_id="op-u", shutdown=False), emu)
    assert (up.state, up.message) == ("succeeded", "hippo is running and ready.")
    assert kube_api.batch.list_namespaced_cron_job(NS).items[0].spec.suspend is False
    assert platform.cluster_status(HIPPO).state == "ready"


# -- standby and promotion ------------------------------------------------------------------


def test_it_creates_a_repo_standby_and_promotes_it_after_the_primary_stops(
    platform, kube_api, emu, hippo_ready
):
    req = StandbyRequest(operation_id="op-sb", source=HIPPO, target=STANDBY, repo="repo1")
    made = drive(lambda: platform.standby_advance(req), emu)
    assert made.state == "succeeded", made
    obj = kube_api.get_cluster(NS, "hippo-standby")
    assert obj["spec"]["standby"] == {"enabled": True, "repoName": "repo1"}
    assert obj["spec"]["backups"]["pgbackrest"]["repos"] == [S3_REPO]
    assert "global" not in obj["spec"]["backups"]["pgbackrest"]  # the primary's path
    assert platform.cluster_status(STANDBY).role == "standby"

    with pytest.raises(PermanentError, match="The old primary db/hippo is still running"):
        platform.promote_advance(STANDBY, operation_id="op-p")
    assert drive(lambda: platform.power_advance(HIPPO, operation_id="op-s", shutdown=True),
                 emu).state == "succeeded"
    first = platform.promote_advance(STANDBY, operation_id="op-p")
    assert first.state == "running"
    assert kube_api.get_cluster(NS, "hippo-standby")["spec"]["standby"]["enabled"] is False
    waiting = platform.promote_advance(STANDBY, operation_id="op-p")
    assert waiting.message == "Waiting for Patroni to promote the leader (standby_leader)."
    done = drive(lambda: platform.promote_advance(STANDBY, operation_id="op-p"), emu)
    assert (done.state, done.message) == (
        "succeeded", "hippo-standby was promoted: its leader reports role primary.")
    assert platform.cluster_status(STANDBY).role == "primary"


def test_it_creates_a_streaming_standby(platform, kube_api, emu, hippo_ready):
    req = StandbyRequest(operation_id="op-st", source=HIPPO, target=STANDBY, repo=None,
                         host="hippo-primary.db.svc", port=5432)
    assert drive(lambda: platform.standby_advance(req), emu).state == "succeeded"
    assert kube_api.get_cluster(NS, "hippo-standby")["spec"]["standby"] == {
        "enabled": True, "host": "hippo-primary.db.svc", "port": 5432}


def test_a_repo_standby_needs_a_cloud_repo(platform, kube_api, hippo_manifest, emu):
    kube_api.create_cluster(NS, hippo_manifest())  # a volume repo
    emu.settle()
    req = StandbyRequest(operation_id="op-sb", source=HIPPO, target=STANDBY, repo="repo1")
    with pytest.raises(PermanentError, match="not a cloud repo"):
        platform.standby_advance(req)


def test_restoring_a_standby_in_place_is_refused(platform, kube_api, emu, hippo_ready):
    drive(lambda: platform.standby_advance(StandbyRequest(
        operation_id="op-sb", source=HIPPO, target=STANDBY, repo="repo1")), emu)
    with pytest.raises(PermanentError, match="hippo-standby is a standby"):
        platform.restore_in_place_advance(InPlaceRestoreRequest(
            operation_id="op-r", cluster=STANDBY, repo="repo1", point=RestoreTarget()))
