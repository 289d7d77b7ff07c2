"""PostgresCluster bodies and patches: the seed manifests reproduced, every output valid
against the real CRD, and the hazards of PGO-REFERENCE §10 kept out by construction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from restores.platforms import manifests as m
from restores.platforms.manifests import (
    GCS,
    S3,
    Azure,
    CloneSource,
    CloudSource,
    ClusterSpec,
    InvalidManifest,
    LiveSource,
    RepoSpec,
    RestoreJob,
    Toleration,
)
from restores.platforms.restore_options import pgo_restore_options
from restores.platforms.targets import InvalidRestoreOptions, RestoreTarget
from tests.kube.apiserver import crd

SEEDS = Path(__file__).resolve().parents[3] / "shared/pgo/seed-manifests"
NS = "postgres-operator"  # the namespace of the seed document
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
BUCKET = S3("my-bucket", "s3.ca-central-1.amazonaws.com", "ca-central-1")
HIPPO_S3_PATH = "/pgbackrest/postgres-operator/hippo/repo1"
VOLUME = RepoSpec("repo1", volume_size="1Gi")
CLOUD = RepoSpec("repo1", s3=BUCKET)


def seed(prefix: str) -> dict[str, Any]:
    return yaml.safe_load(next(SEEDS.glob(f"{prefix}-*.yaml")).read_text())


def assert_valid(manifest: dict[str, Any]) -> dict[str, Any]:
    """The API server would accept it as it is: nothing pruned, nothing rejected."""
    assert crd.validate(manifest) == []
    return manifest


def assert_patch_valid(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The object after the merge patch is accepted."""
    return assert_valid(crd.merge_patch(base, patch))


def spec(name: str = "elephant", *repos: RepoSpec, **kwargs: Any) -> ClusterSpec:
    return ClusterSpec(name, kwargs.pop("namespace", NS), 16, repos or (VOLUME,), **kwargs)


# -- the seed document, reproduced --------------------------------------------------------


def assert_same_sections(built: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_valid(built)
    assert built["metadata"]["name"] == expected["metadata"]["name"]
    for key in ("dataSource", "backups", "standby", "postgresVersion"):
        assert built["spec"].get(key) == expected["spec"].get(key), key
    claim = built["spec"]["instances"][0]["dataVolumeClaimSpec"]
    assert claim == expected["spec"]["instances"][0]["dataVolumeClaimSpec"]


def test_a_clone_of_a_live_cluster_reproduces_seed_manifest_01() -> None:
    built = m.clone_manifest(spec(), CloneSource(cluster=LiveSource("hippo", "repo1")))
    assert_same_sections(built, seed("01"))


def test_a_point_in_time_recovery_into_a_new_cluster_reproduces_seed_manifest_02() -> None:
    when = dt.datetime(2021, 6, 9, 14, 15, 11, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    options = pgo_restore_options(RestoreTarget("time", time=when), now=NOW)
    source = LiveSource("hippo", "repo1", options=tuple(options))
    assert_same_sections(m.clone_manifest(spec(), CloneSource(cluster=source)), seed("02"))


def test_a_standby_from_an_s3_repo_reproduces_seed_manifest_03() -> None:
    built = m.standby_manifest(spec("hippo-standby", CLOUD), repo_name="repo1")
    assert_same_sections(built, seed("03"))


def test_s3_backups_and_a_manual_full_backup_reproduce_seed_manifest_04() -> None:
    hippo = spec("hippo", CLOUD, configuration_secret="pgo-s3-creds")
    body = m.cluster_manifest(hippo)
    patched = crd.merge_patch(body, m.manual_backup_patch("repo1", ["--type=full"], "b1"))
    assert_same_sections(patched, seed("04"))
    assert m.repo_path(NS, "hippo", "repo1") == HIPPO_S3_PATH  # the console's convention


def _from_s3() -> CloneSource:
    repo = RepoSpec("repo1", s3=BUCKET, path=HIPPO_S3_PATH)
    return CloneSource(cloud=CloudSource(repo, configuration_secret="pgo-s3-creds"))


def test_a_clone_from_s3_backing_up_to_s3_reproduces_seed_manifest_05() -> None:
    target = spec("elephant", CLOUD, configuration_secret="pgo-s3-creds")
    assert_same_sections(m.clone_manifest(target, _from_s3()), seed("05"))


def test_a_clone_from_s3_backing_up_to_a_volume_reproduces_seed_manifest_06() -> None:
    assert_same_sections(m.clone_manifest(spec("rhino"), _from_s3()), seed("06"))


# -- every builder output is valid --------------------------------------------------------

JOB = RestoreJob(
    requests=(("cpu", "500m"), ("memory", "1Gi")),
    limits=(("memory", "2Gi"),),
    node_labels=(("kubernetes.io/os", "linux"), ("topology.kubernetes.io/zone", "eu-1a")),
    tolerations=(
        Toleration("dedicated", "Equal", "db", "NoSchedule"),
        Toleration("node.kubernetes.io/unreachable", "Exists", effect="NoExecute", seconds=30),
        Toleration(operator="Exists"),
    ),
    priority_class="restore-high",
)
SPECS = [
    spec(),
    spec("e", RepoSpec("repo2", gcs=GCS("my_bucket")), instance_name=""),
    spec("az", RepoSpec("repo4", azure=Azure("backups")), image="registry.example/pg:16.4-1"),
    spec("many", VOLUME, RepoSpec("repo2", s3=BUCKET, path="/custom/many"),
         RepoSpec("repo3", gcs=GCS("b-1")), replicas=3, storage="20Gi",
         storage_class="fast-ssd", configuration_secret="creds",
         global_options=(("repo2-retention-full", "7"), ("repo2-s3-uri-style", "path"))),
    spec("job", CLOUD, restore_job=JOB),
    spec("x" * 37),  # with "instance1": 46 characters together
]  # fmt: skip


@pytest.mark.parametrize("target", SPECS, ids=lambda s: s.name[:8])
def test_every_body_is_valid(target: ClusterSpec) -> None:
    assert_valid(m.cluster_manifest(target))
    other = LiveSource("hippo", "repo1", cluster_namespace="prod", options=("--type=immediate",))
    clone = assert_valid(m.clone_manifest(target, CloneSource(cluster=other)))
    assert clone["spec"]["dataSource"]["postgresCluster"]["clusterNamespace"] == "prod"
    assert_valid(m.clone_manifest(target, _from_s3()))
    if any(r.is_cloud for r in target.repos):
        cloud = next(r for r in target.repos if r.is_cloud)
        assert_valid(m.standby_manifest(target, repo_name=cloud.name))
    assert_valid(m.standby_manifest(target, host="hippo-primary.prod.svc", port=5432))


def test_the_restore_job_settings_go_to_the_data_source() -> None:
    clone = m.clone_manifest(spec("job", CLOUD, restore_job=JOB), _from_s3())
    entry = clone["spec"]["dataSource"]["pgbackrest"]
    assert entry["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    terms = entry["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": "kubernetes.io/os",
        "operator": "In",
        "values": ["linux"],
    }
    assert entry["tolerations"][1] == {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }
    assert entry["priorityClassName"] == "restore-high"


def test_a_live_clone_in_the_same_namespace_names_no_namespace() -> None:
    clone = m.clone_manifest(spec(), CloneSource(cluster=LiveSource("hippo", "repo1")))
    assert clone["spec"]["dataSource"] == {
        "postgresCluster": {"clusterName": "hippo", "repoName": "repo1"}
    }
    assert clone["metadata"] == {"name": "elephant", "namespace": NS}


# -- refusals ------------------------------------------------------------------------------

LIVE = CloneSource(cluster=LiveSource("hippo", "repo1"))
REFUSED = [
    (
        lambda: m.cluster_manifest(spec("Elephant")),
        m.BAD_NAME.format(what="cluster name", name="Elephant"),
    ),
    (
        lambda: m.cluster_manifest(spec("x" * 64)),
        m.BAD_NAME.format(what="cluster name", name="x" * 64),
    ),
    (lambda: m.cluster_manifest(spec("x" * 38)), m.TOO_LONG_WITH_SET.format(n=47)),
    (
        lambda: m.cluster_manifest(spec("x" * 45, CLOUD, instance_name="")),
        m.TOO_LONG_WITH_SET.format(n=47),
    ),
    (
        lambda: m.cluster_manifest(spec("x" * 45, CLOUD, instance_name="a")),
        m.TOO_LONG_FOR_RESTORE_JOB.format(n=45),
    ),
    (
        lambda: m.cluster_manifest(spec("x" * 43, instance_name="a")),
        m.TOO_LONG_WITH_REPO_HOST.format(n=43),
    ),
    (lambda: m.cluster_manifest(spec(namespace="Prod")), m.BAD_NAMESPACE.format(name="Prod")),
    (lambda: m.cluster_manifest(spec(instance_name="Big")), m.BAD_INSTANCE.format(name="Big")),
    (lambda: m.cluster_manifest(dataclasses.replace(spec(), postgres_version=10)), m.BAD_VERSION),
    (lambda: m.cluster_manifest(dataclasses.replace(spec(), postgres_version="16")), m.BAD_VERSION),
    (lambda: m.cluster_manifest(spec(replicas=0)), m.BAD_REPLICAS),
    (
        lambda: m.cluster_manifest(spec(storage="1 Gi")),
        m.BAD_QUANTITY.format(what="The storage size", value="1 Gi"),
    ),
    (
        lambda: m.cluster_manifest(spec(storage="0Gi")),
        m.BAD_QUANTITY.format(what="The storage size", value="0Gi"),
    ),
    (
        lambda: m.cluster_manifest(spec(image="img; rm -rf /")),
        m.BAD_IMAGE.format(image="img; rm -rf /"),
    ),
    (
        lambda: m.cluster_manifest(spec(configuration_secret="Creds")),
        m.BAD_K8S_NAME.format(name="Creds"),
    ),
    (lambda: m.cluster_manifest(dataclasses.replace(spec(), repos=())), m.NO_REPOS),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo5", volume_size="1Gi"))),
        m.BAD_REPO.format(repo="repo5"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1x", volume_size="1Gi"))),
        m.BAD_REPO.format(repo="repo1x"),
    ),
    (lambda: m.cluster_manifest(spec("e", VOLUME, VOLUME)), m.DUPLICATE_REPO.format(repo="repo1")),
    (lambda: m.cluster_manifest(spec("e", RepoSpec("repo1"))), m.REPO_STORAGE.format(repo="repo1")),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", volume_size="1Gi", s3=BUCKET))),
        m.REPO_STORAGE.format(repo="repo1"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", volume_size="1Gi", path="/x"))),
        m.VOLUME_PATH.format(repo="repo1"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", s3=BUCKET, path="/a/../b"))),
        m.BAD_PATH.format(path="/a/../b"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", s3=BUCKET, path="rel"))),
        m.BAD_PATH.format(path="rel"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", s3=S3("b\nx", "e", "r")))),
        m.BAD_CLOUD.format(what="bucket", value="b\nx", repo="repo1"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", s3=S3("bkt", "e/x", "r")))),
        m.BAD_CLOUD.format(what="endpoint", value="e/x", repo="repo1"),
    ),
    (
        lambda: m.cluster_manifest(spec("e", RepoSpec("repo1", azure=Azure("")))),
        m.BAD_CLOUD.format(what="container", value="", repo="repo1"),
    ),
    (
        lambda: m.cluster_manifest(spec(global_options=(("repo1-path", "/x"),))),
        m.GLOBAL_PATH.format(key="repo1-path"),
    ),
    (
        lambda: m.cluster_manifest(spec(global_options=(("a", "x\ny"),))),
        m.BAD_GLOBAL.format(key="a", value="x\ny"),
    ),
    (
        lambda: m.cluster_manifest(spec(global_options=(("A b", "x"),))),
        m.BAD_GLOBAL.format(key="A b", value="x"),
    ),
    (lambda: m.clone_manifest(spec(), CloneSource()), m.SOURCE_NEITHER),
    (
        lambda: m.clone_manifest(spec(), CloneSource(cluster=LIVE.cluster, cloud=_from_s3().cloud)),
        m.SOURCE_BOTH,
    ),
    (lambda: m.clone_manifest(spec("hippo"), LIVE), m.CLONE_OF_ITSELF),
    (
        lambda: m.clone_manifest(
            spec("hippo", namespace="prod"),
            CloneSource(cluster=LiveSource("hippo", "repo1", "prod")),
        ),
        m.CLONE_OF_ITSELF,
    ),
    (
        lambda: m.clone_manifest(spec(), CloneSource(cluster=LiveSource("Hippo", "repo1"))),
        m.BAD_NAME.format(what="source cluster name", name="Hippo"),
    ),
    (
        lambda: m.clone_manifest(spec(), CloneSource(cluster=LiveSource("hippo", "repo9"))),
        m.BAD_REPO.format(repo="repo9"),
    ),
    (lambda: m.clone_manifest(spec(), CloneSource(cloud=CloudSource(VOLUME))), m.SOURCE_NOT_CLOUD),
    (
        lambda: m.clone_manifest(
            spec(),
            CloneSource(cloud=CloudSource(CLOUD, global_options=(("repo2-s3-uri-style", "path"),))),
        ),
        m.GLOBAL_OTHER_REPO.format(key="repo2-s3-uri-style", repo="repo1"),
    ),
    (
        lambda: m.clone_manifest(spec(), CloneSource(cloud=CloudSource(CLOUD, stanza="a b"))),
        m.BAD_GLOBAL.format(key="stanza", value="a b"),
    ),
    (lambda: m.standby_manifest(spec("s", CLOUD)), m.STANDBY_NEEDS_SOURCE),
    (lambda: m.standby_manifest(spec("s"), repo_name="repo1"), m.STANDBY_REPO.format(repo="repo1")),
    (
        lambda: m.standby_manifest(spec("s", CLOUD), repo_name="repo2"),
        m.STANDBY_REPO.format(repo="repo2"),
    ),
    (lambda: m.standby_manifest(spec("s"), host="bad host"), m.BAD_HOST.format(host="bad host")),
    (lambda: m.standby_manifest(spec("s"), host="10.0.0.1", port=80), m.BAD_PORT),
    (lambda: m.standby_manifest(spec("s"), host="10.0.0.1", port=True), m.BAD_PORT),
    (
        lambda: m.clone_manifest(spec(restore_job=RestoreJob(requests=(("gpu", "1"),))), LIVE),
        m.BAD_JOB.format(what="resource", value="gpu"),
    ),
    (
        lambda: m.clone_manifest(spec(restore_job=RestoreJob(node_labels=(("a b", "x"),))), LIVE),
        m.BAD_JOB.format(what="node label", value="a b=x"),
    ),
    (
        lambda: m.clone_manifest(spec(restore_job=RestoreJob(tolerations=(Toleration(),))), LIVE),
        m.BAD_JOB.format(what="toleration", value=Toleration()),
    ),
    (
        lambda: m.clone_manifest(spec(restore_job=RestoreJob(priority_class="A")), LIVE),
        m.BAD_K8S_NAME.format(name="A"),
    ),
    (
        lambda: m.manual_backup_patch("repo1", ["--repo=1"], "t"),
        m.BAD_BACKUP_OPTION.format(option="--repo=1"),
    ),
    (
        lambda: m.manual_backup_patch("repo1", ["--stanza=db"], "t"),
        m.BAD_BACKUP_OPTION.format(option="--stanza=db"),
    ),
    (
        lambda: m.manual_backup_patch("repo1", ["--type=full --repo=1"], "t"),
        m.BAD_BACKUP_OPTION.format(option="--type=full --repo=1"),
    ),
    (
        lambda: m.manual_backup_patch("repo1", ["--annotation=a--repo=1"], "t"),
        m.BAD_BACKUP_OPTION.format(option="--annotation=a--repo=1"),
    ),
    (
        lambda: m.manual_backup_patch("repo1", ["--type='full'"], "t"),
        m.BAD_BACKUP_OPTION.format(option="--type='full'"),
    ),
    (lambda: m.manual_backup_patch("repo0", [], "t"), m.BAD_REPO.format(repo="repo0")),
    (lambda: m.manual_backup_patch("repo1", [], ""), m.BAD_TRIGGER.format(value="")),
    (lambda: m.manual_backup_patch("repo1", [], "a b"), m.BAD_TRIGGER.format(value="a b")),
    (lambda: m.restore_in_place_patch("repo1", [], "t" * 64), m.BAD_TRIGGER.format(value="t" * 64)),
    (
        lambda: m.restore_in_place_patch("repo1", [], "t", cluster_name="-x"),
        m.BAD_NAME.format(what="source cluster name", name="-x"),
    ),
    (lambda: m.shutdown_patch("yes"), m.BAD_SHUTDOWN),
]


@pytest.mark.parametrize(("build", "message"), REFUSED)
def test_invalid_input_is_refused_with_a_clear_message(build: Any, message: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        build()
    assert caught.value.message == message


@pytest.mark.parametrize(
    "options", [["--repo=2"], ["--stanza=db"], ["--target-action=pause"], ["--type=time"]]
)
def test_restore_options_are_checked_everywhere_they_go(options: list[str]) -> None:
    with pytest.raises(InvalidRestoreOptions):
        m.clone_manifest(
            spec(), CloneSource(cluster=LiveSource("hippo", "repo1", options=tuple(options)))
        )
    with pytest.raises(InvalidRestoreOptions):
        m.clone_manifest(spec(), CloneSource(cloud=CloudSource(CLOUD, options=tuple(options))))
    with pytest.raises(InvalidRestoreOptions):
        m.restore_in_place_patch("repo1", options, "t")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("x" * 37, {}, None),
        ("x" * 38, {}, m.TOO_LONG_WITH_SET.format(n=47)),
        ("x" * 44, {"instance_name": "aa", "volume_repo": False}, None),
        ("x" * 43, {"instance_name": "a"}, m.TOO_LONG_WITH_REPO_HOST.format(n=43)),
        ("hippo", {"instance_name": "a_b"}, m.BAD_INSTANCE.format(name="a_b")),
        ("hippo-", {}, m.BAD_NAME.format(what="cluster name", name="hippo-")),
    ],
)
def test_cluster_names_can_be_checked_alone(
    name: str, kwargs: dict[str, Any], message: str | None
) -> None:
    if message is None:
        m.check_cluster_name(name, NS, **kwargs)
    else:
        with pytest.raises(InvalidManifest) as caught:
            m.check_cluster_name(name, NS, **kwargs)
        assert caught.value.message == message


def test_the_names_may_reach_the_documented_limits() -> None:
    assert_valid(m.cluster_manifest(spec("x" * 44, CLOUD, instance_name="aa")))
    assert_valid(m.cluster_manifest(spec("x" * 42, instance_name="a")))


# -- the clone's own repo path -------------------------------------------------------------


def test_a_clone_restoring_a_deleted_cluster_under_its_own_name_needs_a_new_path() -> None:
    same_path = CloneSource(cloud=CloudSource(RepoSpec("repo1", s3=BUCKET, path=HIPPO_S3_PATH)))
    with pytest.raises(InvalidManifest) as caught:
        m.clone_manifest(spec("hippo", CLOUD), same_path)
    message = m.REPO_PATH_CLASH.format(repo="repo1", path=HIPPO_S3_PATH, source=HIPPO_S3_PATH)
    assert caught.value.message == message
    moved = RepoSpec("repo1", s3=BUCKET, path=HIPPO_S3_PATH + "-2026")
    assert_valid(m.clone_manifest(spec("hippo", moved), same_path))


@pytest.mark.parametrize(
    ("path", "source_paths"),
    [
        ("/pgbackrest/repo1", ()),  # PGO's default for the source
        ("/pgbackrest/repo2/deeper", ()),
        ("/pgbackrest/postgres-operator/hippo/repo1", ()),  # the console's path of the source
        ("/pgbackrest/postgres-operator/hippo", ()),
        ("/shared/x", ("/shared/x/y",)),  # nested around a path the source's spec sets
        ("/shared/x/y/z", ("/shared/x",)),
    ],
)
def test_a_clone_path_may_not_overlap_the_source(path: str, source_paths: tuple[str, ...]) -> None:
    target = spec("elephant", RepoSpec("repo1", s3=BUCKET, path=path))
    with pytest.raises(InvalidManifest):
        m.clone_manifest(
            target, CloneSource(cluster=LiveSource("hippo", "repo1", repo_paths=source_paths))
        )


DNS = st.from_regex(r"\A[a-z]([-a-z0-9]{0,8}[a-z0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(
    name=DNS,
    namespace=DNS,
    source_name=DNS,
    source_namespace=st.none() | DNS,
    repo=st.sampled_from(["repo1", "repo2", "repo3", "repo4"]),
    source_repo=st.sampled_from(["repo1", "repo2", "repo3", "repo4"]),
    source_path=st.none() | st.sampled_from(["/pgbackrest/{ns}/{name}/{repo}", "/{name}"]),
    own_path=st.none() | st.sampled_from(["/pgbackrest/{ns}/{name}/{repo}", "/{name}/x"]),
    cloud=st.booleans(),
)
def test_a_clone_never_writes_where_its_source_keeps_backups(
    name: str,
    namespace: str,
    source_name: str,
    source_namespace: str | None,
    repo: str,
    source_repo: str,
    source_path: str | None,
    own_path: str | None,
    cloud: bool,
) -> None:
    assume(len(name) <= 37)
    source_ns = source_namespace or namespace
    fill = {"ns": source_ns, "name": source_name, "repo": source_repo}
    src_path = source_path.format(**fill) if source_path else None
    mine = own_path.format(ns=namespace, name=name, repo=repo) if own_path else None
    target = spec(name, RepoSpec(repo, s3=BUCKET, path=mine), namespace=namespace)
    if cloud:
        source_repo_spec = RepoSpec(source_repo, s3=BUCKET, path=src_path)
        source = CloneSource(cloud=CloudSource(source_repo_spec))
        source_paths = [src_path or f"/pgbackrest/{source_repo}"]
    else:
        paths = (src_path,) if src_path else ()
        live = LiveSource(source_name, source_repo, source_namespace, repo_paths=paths)
        source = CloneSource(cluster=live)
        source_paths = [*paths, *(f"/pgbackrest/{source_ns}/{source_name}/repo{n}" for n in "1234")]
    try:
        clone = m.clone_manifest(target, source)
    except InvalidManifest:
        return
    assert_valid(clone)
    own = clone["spec"]["backups"]["pgbackrest"]["global"][f"{repo}-path"]
    for theirs in source_paths:
        assert own != theirs
        assert not own.startswith(theirs.rstrip("/") + "/")
        assert not theirs.startswith(own.rstrip("/") + "/")


def test_volume_repos_keep_pgos_path_on_their_own_volume() -> None:
    clone = m.clone_manifest(spec("elephant", VOLUME, RepoSpec("repo2", s3=BUCKET)), LIVE)
    assert clone["spec"]["backups"]["pgbackrest"]["global"] == {
        "repo2-path": "/pgbackrest/postgres-operator/elephant/repo2"
    }


def test_a_standby_replays_from_the_primarys_path_not_its_own() -> None:
    primary_repo = RepoSpec("repo1", s3=BUCKET, path=HIPPO_S3_PATH)
    own = RepoSpec("repo2", s3=BUCKET)
    standby = m.standby_manifest(spec("hippo-standby", primary_repo, own), repo_name="repo1")
    assert standby["spec"]["backups"]["pgbackrest"]["global"] == {
        "repo1-path": HIPPO_S3_PATH,
        "repo2-path": "/pgbackrest/postgres-operator/hippo-standby/repo2",
    }
    assert standby["spec"]["standby"] == {"enabled": True, "repoName": "repo1"}
    assert_valid(standby)


def test_a_streaming_standby_gets_host_and_port() -> None:
    standby = m.standby_manifest(spec("s"), host="10.1.2.3")
    assert standby["spec"]["standby"] == {"enabled": True, "host": "10.1.2.3", "port": 5432}
    both = m.standby_manifest(spec("s", CLOUD), repo_name="repo1", host="db.example", port=6432)
    assert both["spec"]["standby"] == {
        "enabled": True,
        "repoName": "repo1",
        "host": "db.example",
        "port": 6432,
    }


# -- patches -------------------------------------------------------------------------------


def test_annotation_keys_are_pgos() -> None:
    assert m.BACKUP_ANNOTATION == "postgres-operator.crunchydata.com/pgbackrest-backup"
    assert m.RESTORE_ANNOTATION == "postgres-operator.crunchydata.com/pgbackrest-restore"


def test_a_manual_backup_is_requested_in_one_patch_and_replaces_old_options() -> None:
    body = m.cluster_manifest(spec("hippo", CLOUD))
    first = assert_patch_valid(body, m.manual_backup_patch("repo1", ["--type=full"], "op-1"))
    second = assert_patch_valid(first, m.manual_backup_patch("repo1", (), "op-2"))
    assert second["metadata"]["annotations"] == {m.BACKUP_ANNOTATION: "op-2"}
    assert second["spec"]["backups"]["pgbackrest"]["manual"] == {"repoName": "repo1", "options": []}
    patch = m.manual_backup_patch("repo1", "--type=incr", "01JD0Q3ZK4:7")
    assert patch["spec"]["backups"]["pgbackrest"]["manual"]["options"] == ["--type=incr"]


def test_an_in_place_restore_is_requested_in_one_patch() -> None:
    body = m.cluster_manifest(spec("hippo", CLOUD))
    options = pgo_restore_options(RestoreTarget("lsn", lsn="0/3000060"), now=NOW)
    patch = m.restore_in_place_patch("repo1", options, "op-7", restore_job=JOB)
    after = assert_patch_valid(body, patch)
    assert after["metadata"]["annotations"] == {m.RESTORE_ANNOTATION: "op-7"}
    restore = after["spec"]["backups"]["pgbackrest"]["restore"]
    assert restore["enabled"] is True
    assert restore["repoName"] == "repo1"
    assert restore["options"] == ["--type=lsn", '--target="0/3000060"']
    assert restore["priorityClassName"] == "restore-high"


def test_an_in_place_restore_leaves_nothing_of_the_previous_one() -> None:
    body = m.cluster_manifest(spec("hippo", CLOUD))
    first = m.restore_in_place_patch(
        "repo1", ["--type=immediate"], "op-1", cluster_name="other", cluster_namespace="prod",
        restore_job=JOB,
    )  # fmt: skip
    after = crd.merge_patch(
        crd.merge_patch(body, first), m.restore_in_place_patch("repo1", [], "op-2")
    )
    assert after["spec"]["backups"]["pgbackrest"]["restore"] == {
        "enabled": True,
        "repoName": "repo1",
        "options": [],
    }
    assert_valid(after)


def test_h1_a_clone_drops_its_data_source_and_an_in_place_restore_does_too() -> None:
    clone = m.clone_manifest(spec(), LIVE)
    ready = assert_patch_valid(clone, m.data_source_clear_patch())
    assert "dataSource" not in ready["spec"]
    # If the clear was missed, the in-place restore and its disabling clear it (H1(a)).
    restoring = assert_patch_valid(clone, m.restore_in_place_patch("repo1", [], "op-1"))
    assert "dataSource" not in restoring["spec"]
    done = assert_patch_valid(restoring, m.restore_disable_patch())
    assert done["spec"]["backups"]["pgbackrest"]["restore"] == {
        "enabled": False,
        "repoName": "repo1",
        "options": [],
    }
    # Where no restore section is left, the patch needs the repo: repoName is required.
    assert crd.validate(crd.merge_patch(clone, m.restore_disable_patch())) == [
        "spec.backups.pgbackrest.restore: 'repoName' is a required property"
    ]
    disabled = assert_patch_valid(clone, m.restore_disable_patch("repo1"))
    assert "dataSource" not in disabled["spec"]


def test_the_shutdown_start_and_promote_patches_are_valid_and_flip_their_flag() -> None:
    body = m.cluster_manifest(spec("hippo", CLOUD))
    assert assert_patch_valid(body, m.shutdown_patch(True))["spec"]["shutdown"] is True
    assert assert_patch_valid(body, m.shutdown_patch(False))["spec"]["shutdown"] is False
    standby = m.standby_manifest(spec("hippo-standby", CLOUD), repo_name="repo1")
    promoted = assert_patch_valid(standby, m.promote_patch())
    assert promoted["spec"]["standby"] == {"enabled": False, "repoName": "repo1"}


# -- any input: refused, or valid for the API server ---------------------------------------

TEXT = st.text(max_size=12)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = TEXT) -> Any:
    """Valid nine times in ten: a spec has a dozen fields, and some specs should pass."""
    return st.sampled_from((True,) * 9 + (False,)).flatmap(lambda ok: valid if ok else other)


def maybe(strategy: st.SearchStrategy[Any]) -> Any:
    return st.sampled_from((True, True, False)).flatmap(lambda ok: strategy if ok else st.none())


REPO_NAMES = mostly(st.sampled_from(["repo1", "repo2", "repo3", "repo4"]))
PATHS = maybe(mostly(st.sampled_from(["/a/b", "/pgbackrest/x"])))
REPOS = mostly(
    st.one_of(
        st.builds(RepoSpec, REPO_NAMES, volume_size=mostly(st.sampled_from(["1Gi", "2.5Ti"]))),
        st.builds(
            RepoSpec,
            REPO_NAMES,
            s3=st.builds(S3, mostly(DNS), mostly(DNS), mostly(DNS)),
            path=PATHS,
        ),
        st.builds(RepoSpec, REPO_NAMES, gcs=st.builds(GCS, mostly(DNS)), path=PATHS),
        st.builds(RepoSpec, REPO_NAMES, azure=st.builds(Azure, mostly(DNS)), path=PATHS),
    ),
    st.builds(
        RepoSpec, REPO_NAMES, volume_size=maybe(TEXT), gcs=maybe(st.builds(GCS, TEXT)), path=PATHS
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        ClusterSpec,
        name=mostly(DNS),
        namespace=mostly(DNS),
        postgres_version=mostly(st.integers(11, 18), st.integers() | TEXT),
        repos=mostly(
            st.lists(REPOS, min_size=1, max_size=3, unique_by=lambda r: r.name).map(tuple),
            st.just(()),
        ),
        image=maybe(mostly(st.just("registry.example/pg:16"))),
        instance_name=mostly(st.sampled_from(["", "instance1", "a"])),
        replicas=mostly(st.integers(1, 5), st.integers()),
        storage=mostly(st.sampled_from(["1Gi", "10G", "512Mi"])),
        storage_class=maybe(mostly(DNS)),
        configuration_secret=maybe(mostly(DNS)),
        global_options=st.lists(
            st.tuples(mostly(DNS), mostly(st.text(string.printable.strip(), max_size=9))),
            max_size=2,
        ).map(tuple),
        restore_job=maybe(st.just(JOB)),
    )
)
def test_any_cluster_spec_is_refused_or_accepted_by_the_api_server(target: ClusterSpec) -> None:
    try:
        body = m.cluster_manifest(target)
    except InvalidManifest:
        return
    assert_valid(body)
