"""PGO's own end-to-end fixtures (shared/pgo/recorded/) as ground truth: the emulator must
reach every recorded assert after the recorded steps, and the platform's state derivation
must give the right verdict on the recorded status blocks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from restores.platforms.kubernetes import state
from tests.kube.apiserver.crd import crd_path
from tests.kube.emulator import BACKUP_ANN, RESTORE_ANN, PgoEmulator

NS = "db"
RECORDED = crd_path().parent / "recorded"
# Kinds the test API server serves; asserts on PVCs and Services are PGO's, not ours.
SERVED = {"PostgresCluster": "postgresclusters", "Job": "jobs", "Pod": "pods",
          "StatefulSet": "statefulsets"}


def load(path: str) -> list[dict[str, Any]]:
    text = (RECORDED / path).read_text().replace("${KUTTL_PG_VERSION}", "16")
    return [d for d in yaml.safe_load_all(text) if d]


def matches(expected: Any, actual: Any) -> bool:
    """KUTTL's rule: maps are subsets, lists have the same length and match in order."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            matches(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual


def assert_recorded(server, path: str) -> None:
    for doc in load(path):
        resource = SERVED.get(doc["kind"])
        if resource is None:
            continue
        name = (doc.get("metadata") or {}).get("name")
        found = ([server.store.get(resource, NS, name)] if name
                 else server.store.list(resource, NS))
        assert any(o is not None and matches(doc, o) for o in found), (path, doc, found)


@pytest.fixture
def emu(kube_server) -> PgoEmulator:
    return PgoEmulator(kube_server)


def apply(kube_api, emu, path: str) -> None:
    """Create the step's objects, or merge-patch them when they exist (as KUTTL does)."""
    for doc in load(path):
        name = doc["metadata"]["name"]
        try:
            kube_api.get_cluster(NS, name)
        except Exception:
            kube_api.create_cluster(NS, doc)
        else:
            kube_api.patch_cluster(NS, name, doc)
    emu.settle()


def annotate(kube_api, emu, name: str, key: str, value: str) -> None:
    kube_api.patch_cluster(NS, name, {"metadata": {"annotations": {key: value}}})
    emu.settle()


def test_a_backup_a_clone_and_an_in_place_pitr_reach_pgos_recorded_states(
    kube_server, kube_api, emu
):
    apply(kube_api, emu, "pgbackrest-restore/01-create-cluster.yaml")
    assert_recorded(kube_server, "pgbackrest-restore/01-assert.yaml")
    annotate(kube_api, emu, "original", BACKUP_ANN, "one")
    assert_recorded(kube_server, "pgbackrest-restore/03-assert.yaml")
    apply(kube_api, emu, "pgbackrest-restore/04-clone-cluster.yaml")
    assert_recorded(kube_server, "pgbackrest-restore/04-assert.yaml")
    # 15: the recorded request is two calls, the restore spec first, then the annotation
    kube_api.patch_cluster(NS, "original", {"spec": {"backups": {"pgbackrest": {"restore": {
        "enabled": True, "repoName": "repo1",
        "options": ["--type=time", '--target="2026-11-24 10:14:03.123456+00"']}}}}})
    annotate(kube_api, emu, "original", RESTORE_ANN, "one")
    assert_recorded(kube_server, "pgbackrest-restore/15-assert.yaml")


def test_two_repos_and_a_manual_backup_to_the_second_reach_the_recorded_state(
    kube_server, kube_api, emu
):
    apply(kube_api, emu, "pgbackrest-init/00-cluster.yaml")
    assert_recorded(kube_server, "pgbackrest-init/00-assert.yaml")
    annotate(kube_api, emu, "init-pgbackrest", BACKUP_ANN, "manual")
    assert_recorded(kube_server, "pgbackrest-init/02-assert.yaml")


@pytest.mark.parametrize("step,check", [
    ("switchover/01-cluster.yaml", "switchover/01-assert.yaml"),
    ("optional-backups/00-cluster.yaml", "optional-backups/00-assert.yaml"),
    ("streaming-standby/03-standby-cluster.yaml", "streaming-standby/03-assert.yaml"),
])
def test_a_created_cluster_reaches_the_recorded_state(kube_server, kube_api, emu, step, check):
    apply(kube_api, emu, step)
    assert_recorded(kube_server, check)


def test_a_paused_cluster_reaches_the_recorded_state(kube_server, kube_api, emu):
    apply(kube_api, emu, "cluster-pause/files/00-create-cluster.yaml")
    assert_recorded(kube_server, "cluster-pause/files/00-cluster-created.yaml")
    apply(kube_api, emu, "cluster-pause/files/01-pause-cluster.yaml")
    assert_recorded(kube_server, "cluster-pause/files/01-cluster-paused.yaml")


# -- the platform's verdicts on recorded status blocks -------------------------------------


def recorded_cluster(path: str, *, generation: int = 1, **status: Any) -> dict[str, Any]:
    """The first PostgresCluster of a recorded assert, with the fields PGO also writes but
    the assert leaves out (§5)."""
    doc = copy.deepcopy(next(d for d in load(path) if d["kind"] == "PostgresCluster"))
    doc["metadata"].update(namespace=NS, generation=generation)
    st = doc.setdefault("status", {})
    st.setdefault("observedGeneration", generation)
    st.setdefault("patroni", {"systemIdentifier": "7711855634659348341"})
    st.update(status)
    doc["spec"] = {"postgresVersion": 16,
                   "instances": [{"name": i["name"], "replicas": i.get("replicas", 1)}
                                 for i in st.get("instances") or ()]}
    return doc


def leader(role: str = "primary") -> dict[str, Any]:
    return {"metadata": {"annotations": {"status": f'{{"role":"{role}"}}'}}}


@pytest.mark.parametrize("path,leaders,expected", [
    ("pgbackrest-restore/04-assert.yaml", [leader()], ("primary", "ready")),
    ("streaming-standby/03-assert.yaml", [leader("standby_leader")], ("standby", "standby")),
    ("pgbackrest-restore/15-assert.yaml", [leader("master")], ("primary", "ready")),
    ("cluster-pause/files/01-cluster-paused.yaml", [leader()], ("primary", "paused")),
    ("switchover/01-assert.yaml", [], ("unknown", "bootstrapping")),
])
def test_recorded_status_blocks_derive_the_right_role_and_state(path, leaders, expected):
    obj = recorded_cluster(path)
    derived = state.derive(obj, leaders, [])
    assert (derived.role, derived.state) == expected


def test_a_restore_recorded_as_finished_is_not_reported_as_restoring():
    obj = recorded_cluster("pgbackrest-restore/15-assert.yaml")
    obj["status"]["pgbackrest"]["restore"]["succeeded"] = 1  # copied from the Job (§3.3)
    assert state.restore_verdict(obj, []) == ("done", "The restore Job finished.")


def test_a_clone_waiting_on_a_missing_source_is_a_failure():
    """§3.3: restore {id, finished: false}, no startTime, only an event says why."""
    obj = recorded_cluster("pgbackrest-restore/04-assert.yaml", instances=[],
                           pgbackrest={"restore": {"id": "~pgo-bootstrap-clone-one",
                                                   "finished": False}})
    obj["status"]["conditions"] = [{"type": "PGBackRestoreProgressing", "status": "True",
                                    "reason": "ReadyForRestore"}]
    event = {"reason": "InvalidDataSource", "type": "Warning",
             "message": 'PostgresCluster "original" does not exist'}
    derived = state.derive(obj, [], [event])
    assert (derived.state, derived.message) == (
        "failed", 'PGO refused the data source: PostgresCluster "original" does not exist')


# -- the backups fingerprint (ClusterStatus.fingerprint) ------------------------------------


def running_leader(name: str = "init-pgbackrest-instance1-x7k2-0") -> dict[str, Any]:
    labels = {"postgres-operator.crunchydata.com/data": "postgres",
              "postgres-operator.crunchydata.com/role": "master"}
    return {"metadata": {"name": name, "labels": labels}, "status": {"phase": "Running"}}


def with_pgbackrest(obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["status"]["pgbackrest"].update(fields)
    return changed


def test_the_backups_fingerprint_moves_with_what_pgo_writes_about_backups():
    obj = recorded_cluster("pgbackrest-init/00-assert.yaml")  # two repos, repoHost ready
    leaders = [running_leader()]
    steady = state.backups_fingerprint(obj, leaders)
    # §3.1: the manual backup's id arrives, then PGO copies the finished Job.
    started = with_pgbackrest(obj, manualBackup={"id": "one", "finished": False, "active": 1})
    done = with_pgbackrest(obj, manualBackup={
        "id": "one", "finished": True, "succeeded": 1, "startTime": "2026-11-24T10:00:00Z",
        "completionTime": "2026-11-24T10:01:10Z"})
    # §3.6: an in-place restore resets the whole section.
    restoring = copy.deepcopy(obj)
    restoring["status"]["pgbackrest"] = {"restore": {"id": "r1", "finished": False}}
    prints = [state.backups_fingerprint(o, leaders) for o in (obj, started, done, restoring)]
    assert len(set(prints)) == 4
    # No running leader (shut down): what repos() answers changes too.
    assert state.backups_fingerprint(obj, []) != steady
    assert state.backups_fingerprint(obj, [running_leader("init-pgbackrest-instance1-b-0")]) \
        != steady


def test_the_backups_fingerprint_ignores_what_does_not_touch_backups():
    obj = recorded_cluster("pgbackrest-init/00-assert.yaml")
    leaders = [running_leader()]
    steady = state.backups_fingerprint(obj, leaders)
    other = copy.deepcopy(obj)
    other["metadata"]["generation"] = 7
    other["status"]["observedGeneration"] = 6
    other["status"]["conditions"] = [{"type": "ProxyAvailable", "status": "True"}]
    other["status"]["instances"] = [{"name": "instance1", "replicas": 2, "readyReplicas": 1}]
    assert state.backups_fingerprint(other, leaders) == steady
    # scheduledBackups is built from a list of Jobs: another order is not a change.
    jobs = [{"cronJobName": f"init-pgbackrest-repo1-{t}", "repo": "repo1", "type": t,
             "succeeded": 1} for t in ("full", "diff", "incr")]
    one = with_pgbackrest(obj, scheduledBackups=jobs)
    other = with_pgbackrest(obj, scheduledBackups=jobs[::-1])
    assert state.backups_fingerprint(one, leaders) == state.backups_fingerprint(other, leaders)
    assert state.backups_fingerprint(one, leaders) != steady
