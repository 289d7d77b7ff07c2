"""Drills on Kubernetes, end to end: the service, the reconcile steps, the scratch clone PGO
restores, `psql` in its leader pod, and its deletion, over the real client, the test API
server and the PGO emulator; and the ways a drill fails (every one still deletes its
scratch clone, and never anything else)."""

from __future__ import annotations

from typing import Any

import pytest

from restores.models import Cluster
from restores.platforms.base import ClusterRef, PermanentError
from restores.platforms.kubernetes.drills import NOT_OURS
from restores.services import backups, drills
from restores.services.errors import ServiceError
from restores.steps import drills as drill_steps
from tests.actions import request_drill
from tests.kube.fixtures import NS, Console
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db

OPERATION = "dr-console/operation"


def watch_scratch(console: Console, name: str) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    console.server.on_change.append(
        lambda kind, obj, old: seen.append((kind, obj)) if (
            obj.get("kind") == "PostgresCluster" and obj["metadata"]["name"] == name) else None)
    return seen


def test_a_drill_restores_a_scratch_clone_verifies_it_and_deletes_it(
    console: Console, hippo_synced: Cluster
) -> None:
    op = request_drill(hippo_synced)
    scratch = op.refs["scratch"]["name"]
    seen = watch_scratch(console, scratch)
    console.run(op)
    assert op.status == "succeeded", messages(op)
    created = next(obj for kind, obj in seen if kind == "ADDED")
    assert created["metadata"]["annotations"][OPERATION] == str(op.id)
    assert created["spec"]["dataSource"]["postgresCluster"]["clusterName"] == "hippo"
    assert seen[-1][0] == "DELETED"
    assert console.server.store.get("postgresclusters", NS, scratch) is None
    assert console.server.calls[("delete", "postgresclusters")] == 1
    r = op.result
    assert all(c["ok"] for c in r["checks"]), r["checks"]
    v = r["verification"]
    assert v["system_identifier"] == v["source_system_identifier"] != ""
    assert v["server_version"] == "16.4" and v["in_recovery"] is False
    assert v["last_replayed_commit"].endswith("+00:00")
    assert v["databases"] == [{"name": "app", "size_bytes": 8123456, "user_tables": 3},
                              {"name": "postgres", "size_bytes": 7654321, "user_tables": 0}]
    assert r["rto_seconds"] >= 0 and r["rpo_seconds"] >= 0 and r["destroyed_at"]
    assert r["command"].startswith("kubectl apply --server-side") and scratch in r["command"]
    assert "kubectl -n db exec" in op.events.get(step="cleaning_up").command
    # hippo itself was never changed, and the inventory does not keep the scratch cluster.
    assert console.obj("hippo")["metadata"]["generation"] == 1
    assert not Cluster.objects.filter(name=scratch).exists()


def test_a_backup_of_the_source_may_run_during_a_drill(console: Console,
                                                       hippo_synced: Cluster) -> None:

    op = request_drill(hippo_synced)
    backup = backups.backup_request(cluster=hippo_synced, repo_name="repo1",
                                     backup_type="full", user=None)
    console.run(backup)
    console.run(op)
    assert (backup.status, op.status) == ("succeeded", "succeeded"), messages(op)


def test_a_scratch_copy_in_recovery_fails_the_drill_and_is_still_deleted(
    console: Console, hippo_synced: Cluster
) -> None:
    op = request_drill(hippo_synced)
    scratch = op.refs["scratch"]["name"]
    console.emu.in_recovery.add(scratch)
    console.run(op)
    assert op.status == "failed"
    assert op.error_reason.startswith("Verification failed: accepts writes")
    assert op.error_reason.endswith(f"The scratch cluster {scratch} was deleted.")
    assert console.server.store.get("postgresclusters", NS, scratch) is None


def test_a_failed_restore_fails_the_drill_and_deletes_the_scratch_clone(
    console: Console, hippo_synced: Cluster
) -> None:
    op = request_drill(hippo_synced)
    scratch = op.refs["scratch"]["name"]
    console.emu.fail_restore.add(scratch)
    console.run(op)
    assert op.status == "failed"
    assert op.error_reason.startswith("The restore into the scratch cluster failed:")
    assert op.error_fix == drill_steps.DRILL_RESTORE_FAILED_FIX
    assert console.server.store.get("postgresclusters", NS, scratch) is None


def test_a_cluster_the_drill_did_not_create_is_never_deleted(
    console: Console, hippo_synced: Cluster, kube_api, hippo_manifest  # type: ignore[no-untyped-def]
) -> None:
    op = request_drill(hippo_synced)
    scratch = op.refs["scratch"]["name"]
    # Someone creates a cluster with the scratch name between the request and the first step.
    kube_api.create_cluster(NS, hippo_manifest(scratch))
    console.emu.settle()
    console.run(op)
    assert op.status == "failed"
    assert console.server.store.get("postgresclusters", NS, scratch) is not None
    assert console.server.calls[("delete", "postgresclusters")] == 0
    platform = console.platform
    with pytest.raises(PermanentError) as err:
        platform.cluster_destroy(ClusterRef(NS, scratch), operation_id=str(op.id))
    assert err.value.message == NOT_OURS.format(namespace=NS, name=scratch, operation=op.id)


def test_a_worker_killed_at_any_step_restores_and_deletes_once(
    console: Console, hippo_synced: Cluster
) -> None:
    """Every step twice, each from a new worker (no cache, no memory of what was sent)."""
    op = request_drill(hippo_synced)
    scratch = op.refs["scratch"]["name"]
    seen = watch_scratch(console, scratch)
    for _ in range(60):
        for _ in range(2):
            console.new_worker()
            run_step(op)
        if op.is_terminal:
            break
        console.emu.tick()
    assert op.status == "succeeded", messages(op)
    assert [kind for kind, _ in seen].count("ADDED") == 1
    assert console.server.calls[("delete", "postgresclusters")] == 1


def test_the_scratch_name_is_checked_against_the_api(console: Console, hippo_synced: Cluster,
                                                     kube_api, hippo_manifest,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    op_id = uuid.UUID("abcdef12-0000-4000-8000-000000000000")
    monkeypatch.setattr(drills.uuid, "uuid4", lambda: op_id)
    kube_api.create_cluster(NS, hippo_manifest("hippo-drill-abcdef"))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_synced)
    assert err.value.message == drills.SCRATCH_NAME_TAKEN.format(name="hippo-drill-abcdef",
                                                                 namespace=NS)
