"""KubernetesPlatform, clones and PITR into a new cluster (§3.3-3.5, §9, H1): from a live
cluster, from a cloud repo, and the ways they fail."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from restores.platforms.base import CloneRequest, ClusterRef, PermanentError
from restores.platforms.kubernetes import KubernetesPlatform
from restores.platforms.manifests import S3, CloudSource, RepoSpec
from restores.platforms.targets import RestoreTarget
from tests.kube.emulator import drive

NS = "db"
HIPPO = ClusterRef(NS, "hippo")
COPY = ClusterRef(NS, "copy")
CLOUD = CloudSource(repo=RepoSpec("repo1", s3=S3("bucket", "s3.example", "region"),
                                  path="/pgbackrest/db/hippo/repo1"),
                    configuration_secret="pgo-s3-creds")


@pytest.fixture
def hippo_ready(kube_api, hippo_manifest, emu) -> None:
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()


def request(point=None, op="op-c", **kw) -> CloneRequest:
    return CloneRequest(operation_id=op, source=HIPPO, repo="repo1", target=COPY,
                        point=point or RestoreTarget(), storage="2Gi", **kw)


def test_it_clones_and_clears_the_data_source_once_ready(platform, kube_server, kube_api, emu,
                                                         hippo_ready):
    kube_server.reset_calls()
    req = request()
    plan = platform.clone_plan(req)
    assert plan.manifest["spec"]["dataSource"] == {"postgresCluster": {
        "clusterName": "hippo", "repoName": "repo1"}}
    assert plan.manifest["metadata"]["annotations"] == {"dr-console/operation": "op-c"}
    assert "server-side dry run" in plan.steps[1]
    assert plan.kubectl[0] == "kubectl apply --server-side --field-manager=dr-console -f copy.yaml"
    assert kube_server.requests[-1].query.startswith("dryRun=All")
    assert platform.cluster_exists(COPY) is False

    first = platform.clone_advance(req)
    assert (first.state, first.message) == ("running", "Created PostgresCluster copy.")
    created = kube_api.get_cluster(NS, "copy")
    assert created["spec"]["dataSource"] == plan.manifest["spec"]["dataSource"]
    assert created["spec"]["instances"][0]["dataVolumeClaimSpec"]["resources"] == {
        "requests": {"storage": "2Gi"}}
    done = drive(lambda: platform.clone_advance(req), emu)
    assert done.state == "succeeded", done
    assert float(done.result["restore_seconds"]) >= 0
    obj = kube_api.get_cluster(NS, "copy")
    assert "dataSource" not in obj["spec"]  # H1
    assert obj["status"]["pgbackrest"]["restore"]["id"] == "~pgo-bootstrap-copy"
    assert platform.cluster_status(COPY).state == "ready"
    # idempotent after the fact, and one create only (the other is the plan's dry run)
    assert platform.clone_advance(req).state == "succeeded"
    creates = [r for r in kube_server.requests if r.verb == "create"
               and r.resource == "postgresclusters"]
    assert [r.query.startswith("dryRun") for r in creates] == [True, False]


def test_a_point_in_time_clone_of_one_database_passes_its_options_to_pgo(
    platform, kube_api, emu, hippo_ready
):
    when = dt.datetime(2026, 11, 24, 10, 14, 3, tzinfo=dt.UTC)
    req = request(RestoreTarget(kind="time", time=when), db_include=("app",), process_max=2)
    platform.clone_advance(req)
    options = kube_api.get_cluster(NS, "copy")["spec"]["dataSource"]["postgresCluster"][
        "options"]
    assert options == ['--type=time', '--target="2026-11-24 10:14:03+00"',
                       "--db-include=app", "--process-max=2"]
    assert drive(lambda: platform.clone_advance(req), emu).state == "succeeded"


def cloud_request(op="op-s3", **kw) -> CloneRequest:
    return CloneRequest(operation_id=op, source=None, repo="repo1", target=COPY,
                        point=RestoreTarget(), cloud=CLOUD, **kw)


def test_it_clones_from_a_cloud_repo(platform, kube_api, emu):
    with pytest.raises(PermanentError, match="needs the PostgreSQL major version"):
        platform.clone_plan(cloud_request())
    req = cloud_request(postgres_version=16)
    plan = platform.clone_plan(req)
    assert plan.manifest["spec"]["dataSource"]["pgbackrest"] == {
        "stanza": "db", "configuration": [{"secret": {"name": "pgo-s3-creds"}}],
        "global": {"repo1-path": "/pgbackrest/db/hippo/repo1"},
        "repo": {"name": "repo1", "s3": {"bucket": "bucket", "endpoint": "s3.example",
                                         "region": "region"}}}
    assert plan.steps[0].startswith("Create PostgresCluster db/copy; PGO restores it from the "
                                    "cloud repo s3://bucket/pgbackrest/db/hippo/repo1 (stanza db)")
    # the clone backs up to a volume of its own (the seed's rhino)
    own = plan.manifest["spec"]["backups"]["pgbackrest"]
    assert [sorted(r) for r in own["repos"]] == [["name", "volume"]]
    assert "configuration" not in own
    done = drive(lambda: platform.clone_advance(req), emu)
    assert done.state == "succeeded"
    assert "dataSource" not in kube_api.get_cluster(NS, "copy")["spec"]


def test_a_cloud_clone_can_back_up_to_the_same_storage_at_its_own_path(platform, kube_api,
                                                                      emu):
    """The seed's elephant: same bucket and credentials, the clone's own repo path."""
    req = cloud_request(postgres_version=16, backups_to_cloud=True)
    own = platform.clone_plan(req).manifest["spec"]["backups"]["pgbackrest"]
    assert own["repos"] == [{"name": "repo1", "s3": {
        "bucket": "bucket", "endpoint": "s3.example", "region": "region"}}]
    assert own["configuration"] == [{"secret": {"name": "pgo-s3-creds"}}]
    path = own["global"]["repo1-path"]
    assert path == "/pgbackrest/db/copy/repo1" != CLOUD.repo.path
    assert drive(lambda: platform.clone_advance(req), emu).state == "succeeded"
    assert kube_api.get_cluster(NS, "copy")["spec"]["backups"]["pgbackrest"] == own


def test_a_cloud_clone_whose_restore_job_fails_says_what_to_check(platform, emu):
    emu.fail_restore.add("copy")  # e.g. the credentials do not open the bucket
    failed = drive(lambda: platform.clone_advance(cloud_request(postgres_version=16)), emu)
    assert failed.state == "failed"
    assert "PGO does not check a cloud repo beforehand" in failed.message
    assert "(Secret pgo-s3-creds)" in failed.message
    assert "kubectl -n db logs job/copy-pgbackrest-restore" in failed.message


def test_a_clone_has_exactly_one_data_source(platform, kube_api, hippo_ready):
    with pytest.raises(ValueError, match="exactly one source"):
        CloneRequest(operation_id="op", source=HIPPO, repo="repo1", target=COPY,
                     point=RestoreTarget(), cloud=CLOUD)
    with pytest.raises(ValueError, match="exactly one source"):
        CloneRequest(operation_id="op", source=None, repo="repo1", target=COPY,
                     point=RestoreTarget())
    assert platform.cluster_exists(COPY) is False


def test_a_source_that_disappears_fails_with_pgos_event(platform, kube_api, emu, hippo_ready):
    emu.deferred.add("copy")  # PGO gets to the clone after the source is gone
    req = request()
    platform.clone_advance(req)
    kube_api.delete_cluster(NS, "hippo")
    emu.settle()
    failed = platform.clone_advance(req)
    assert failed.state == "failed"
    assert failed.message.startswith(
        'PGO refused the data source: PostgresCluster "hippo" does not exist. Fix: make sure')
    assert "InvalidDataSource" in failed.detail


def test_a_missing_source_fails_before_anything_is_created(platform):
    failed = platform.clone_advance(request())
    assert (failed.state, failed.message) == (
        "failed", 'PostgresCluster "hippo" does not exist in db.')
    assert platform.cluster_exists(COPY) is False


def test_a_failed_restore_job_fails_the_clone(platform, emu, hippo_ready):
    emu.fail_restore.add("copy")
    failed = drive(lambda: platform.clone_advance(request()), emu)
    assert failed.state == "failed"
    assert "The restore Job copy-pgbackrest-restore failed" in failed.message
    assert "kubectl -n db logs job/copy-pgbackrest-restore" in failed.message


def test_a_restore_pgo_never_starts_is_reported(kube_server, kube_api, emu, hippo_ready):
    platform = KubernetesPlatform(namespaces=[NS], api_client=kube_server.api_client(),
                                  stuck_after=0)
    emu.deferred.add("copy")
    req = request()
    platform.clone_advance(req)
    stuck = platform.clone_advance(req)
    assert stuck.state == "failed"
    assert stuck.message.startswith("PGO has not started the restore after")


def test_it_never_takes_over_someone_elses_cluster(platform, kube_api, hippo_manifest, emu,
                                                   hippo_ready):
    kube_api.create_cluster(NS, hippo_manifest("copy"))
    with pytest.raises(PermanentError, match="already exists in db and was not created"):
        platform.clone_plan(request())
    failed = platform.clone_advance(request())
    assert failed.state == "failed" and "not created by this operation" in failed.message
    assert "dataSource" not in kube_api.get_cluster(NS, "copy")["spec"]


def test_the_dry_run_reports_the_servers_verdict(platform, kube_server, hippo_ready):
    kube_server.faults.error(422, verb="create", resource="postgresclusters",
                             message="spec.instances: Required value")
    assert platform.dry_run_clone(request()) == ["spec.instances: Required value"]
    assert platform.dry_run_clone(request()) == []
    assert platform.cluster_exists(COPY) is False


def test_two_workers_racing_on_one_clone_create_it_once(platform, kube_server, kube_api, emu,
                                                        hippo_ready):
    """Another worker creates the same clone between this one's read and its create: the
    409 AlreadyExists is recognised as this operation's own object."""
    req = request()
    twin = platform.clone_manifest(req)
    kube_server.faults.hang(0.3, verb="create", resource="postgresclusters")
    raced: list[dict] = []
    racer = threading.Thread(target=lambda: (
        time.sleep(0.1), raced.append(kube_api.create_cluster(NS, twin))))
    racer.start()
    first = platform.clone_advance(req)
    racer.join(5)
    assert raced and raced[0]["metadata"]["name"] == "copy"  # the other worker's create won
    assert first.state in ("pending", "running")
    assert drive(lambda: platform.clone_advance(req), emu).state == "succeeded"
