"""The drill's steps: restore, verify, measure, delete, each able to run again; every failure
still cleans up; on the fake platform, then on Kubernetes (the scratch clone PGO restores,
`psql` in its leader pod, its deletion, and never anything the drill did not create)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from restores import rules
from restores.models import AuditEntry, Cluster, Operation, requests
from restores.platforms import base
from restores.platforms.base import ClusterRef, PermanentError, TransientError
from restores.platforms.kubernetes.drills import NOT_OURS
from restores.steps import drills as drill_steps
from restores.steps import loop
from tests.actions import LATEST, request_drill
from tests.fakes import T0, FakePlatform
from tests.kube.fixtures import NS, Console
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db
OPERATION = "dr-console/operation"


def _restored(fake: FakePlatform, op: Operation, **kwargs: object) -> Operation:
    """Run the drill until its scratch clone is launched, then let the clone finish."""
    run_step(op)
    assert op.step == "restoring"
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"], **kwargs)  # type: ignore[arg-type]
    return run_step(op)


def test_a_drill_restores_verifies_measures_and_deletes(fake: FakePlatform,
                                                        hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    run_step(op)
    assert (op.status, op.step) == ("running", "restoring")
    assert fake.clone_launches == [str(op.id)]
    scratch = op.refs["scratch"]["name"]
    assert op.refs["backup_set"] == "20261124-090000F"
    assert op.refs["latest_recoverable"] == (T0 + dt.timedelta(hours=1)).isoformat()
    for _ in range(2):
        run_step(op)
    assert fake.clone_launches == [str(op.id)]
    promoted = op.created_at + dt.timedelta(seconds=7.5)
    op = _restored(fake, op, promoted_at=f"{promoted.timestamp():.3f}")
    assert op.status == "succeeded", op.error_reason
    assert fake.verified == [scratch] and fake.destroyed == [scratch]
    assert scratch not in fake.clusters_
    r = op.result
    assert r["rto_seconds"] == 7.5
    requested = dt.datetime.fromisoformat(op.params["requested_at"])
    assert r["rpo_seconds"] == round((requested - (T0 + dt.timedelta(hours=1))).total_seconds(), 1)
    assert r["restore_seconds"] == 3.1 and r["backup_set"] == "20261124-090000F"
    assert "pgbackrest" in r["command"] and r["scratch"] == scratch and r["destroyed_at"]
    assert [c["check"] for c in r["checks"]] == ["accepts writes", "same system", "databases",
                                                  "restored size"]
    assert all(c["ok"] for c in r["checks"])
    assert r["verification"]["databases"][0] == {"name": "hippo", "size_bytes": 30_000_000,
                                                 "user_tables": 3}
    # The manual drill's run is sealed once, its evidence's hash in the audit chain.
    run = op.drill_run
    assert (run.outcome, run.plan, run.rto_seconds) == ("passed", None, 7.5)
    assert run.evidence["result"] == r and len(run.evidence_hash) == 64
    assert AuditEntry.objects.filter(action="drill.evidence_sealed",
                                     params__evidence_sha256=run.evidence_hash).count() == 1
    steps = list(op.events.values_list("step", flat=True))
    assert steps[0] == "requested" and steps[-1] == "done"
    assert {"restoring", "verifying", "cleaning_up"} <= set(steps)
    # The inventory never keeps the scratch cluster.
    assert not Cluster.objects.filter(name=scratch).exists()
    events = op.events.count()
    run_step(op)
    assert op.events.count() == events


def test_every_phase_can_run_again(fake: FakePlatform, hippo_row: Cluster) -> None:
    """A worker killed after a transition: the next step repeats the phase harmlessly."""
    op = request_drill(hippo_row)
    run_step(op)
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"])
    # Stop each phase right after its transition, as a killed worker would.
    calls = {"verify": 0}
    real_verify = fake.verify

    def verify_then_die(ref: base.ClusterRef, *, source: base.ClusterRef) -> base.Verification:
        calls["verify"] += 1
        if calls["verify"] == 1:
            raise TransientError("worker killed")
        return real_verify(ref, source=source)

    fake.verify = verify_then_die  # type: ignore[method-assign]
    run_step(op)
    assert (op.status, op.step) == ("running", "verifying")
    run_step(op)
    assert op.status == "succeeded" and calls["verify"] == 2
    assert fake.clone_launches == [str(op.id)] and len(fake.destroyed) == 1


def test_a_cleanup_that_runs_again_finds_the_scratch_gone(fake: FakePlatform,
                                                          hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    run_step(op)
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"])
    fake.destroy_error = TransientError("connection refused")
    run_step(op)
    assert (op.status, op.step) == ("running", "cleaning_up")
    fake.destroy_error = None
    fake.clusters_.pop(op.refs["scratch"]["name"])  # deleted by the call that died
    run_step(op)
    assert op.status == "succeeded"


def test_a_failed_verification_fails_the_drill_and_still_cleans_up(fake: FakePlatform,
                                                                   hippo_row: Cluster) -> None:
    fake.verification = base.Verification(
        server_version="15.20", system_identifier="111", source_system_identifier="222",
        in_recovery=True, databases=())
    op = _restored(fake, request_drill(hippo_row))
    scratch = op.refs["scratch"]["name"]
    assert op.status == "failed"
    assert fake.destroyed == [scratch]
    assert op.error_reason.startswith("Verification failed: accepts writes: still in recovery")
    assert "same system: system identifier 111, the source's is 222" in op.error_reason
    assert op.error_reason.endswith(f"The scratch cluster {scratch} was deleted.")
    assert op.error_fix == drill_steps.DRILL_VERIFY_FAILED_FIX
    assert [c["ok"] for c in op.result["checks"]] == [False, False, False, False]
    assert "restored size: 0 bytes restored, 0% of the backup's 30,000,000" in op.error_reason
    assert op.result["destroyed_at"] and "rto_seconds" in op.result
    assert (op.drill_run.outcome, op.drill_run.remediation_status) == ("failed", "open")
    assert op.drill_run.reason.startswith("Verification failed: accepts writes")


def test_a_failed_restore_fails_the_drill_and_still_cleans_up(fake: FakePlatform,
                                                              hippo_row: Cluster) -> None:
    op = _restored(fake, request_drill(hippo_row), ok=False, message="WAL segment missing")
    assert op.status == "failed"
    assert op.error_reason == drill_steps.DRILL_CLEANED.format(
        reason=drill_steps.DRILL_RESTORE_FAILED.format(reason="WAL segment missing"),
        scratch=op.refs["scratch"]["name"])
    assert fake.destroyed == [op.refs["scratch"]["name"]]
    assert not getattr(fake, "verified", [])


def test_a_permanent_platform_error_still_cleans_up(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    run_step(op)
    fake.fail_next = [PermanentError("the restore Job was deleted")]
    run_step(op)
    assert op.status == "failed" and "the restore Job was deleted" in op.error_reason
    assert fake.destroyed == [op.refs["scratch"]["name"]]


def test_a_scratch_cluster_that_cannot_be_deleted_is_said(fake: FakePlatform,
                                                          hippo_row: Cluster) -> None:
    fake.destroy_error = PermanentError("it was not made by this drill")
    op = _restored(fake, request_drill(hippo_row))
    scratch = op.refs["scratch"]["name"]
    assert op.status == "failed"
    assert op.error_reason == drill_steps.DRILL_SCRATCH_LEFT.format(
        scratch=scratch, error="it was not made by this drill", before="")
    assert op.error_fix == drill_steps.DRILL_SCRATCH_LEFT_FIX.format(scratch=scratch)


def test_it_rechecks_the_window_before_restoring(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    fake.clusters_["hippo"].backups.clear()
    run_step(op)
    assert op.status == "failed"
    assert op.error_reason == rules.NO_WINDOW.format(repo="repo1")
    assert op.error_fix == drill_steps.DRILL_WINDOW_MOVED_FIX
    assert not getattr(fake, "clone_launches", []) and not getattr(fake, "destroyed", [])


def test_the_latest_recoverable_time_is_read_at_the_first_step(fake: FakePlatform,
                                                               hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    fake.clusters_["hippo"].latest = T0 + dt.timedelta(hours=2)
    run_step(op)
    assert op.refs["latest_recoverable"] == (T0 + dt.timedelta(hours=2)).isoformat()


def test_the_clone_request_is_a_scratch_one(hippo_row: Cluster) -> None:
    op = request_drill(hippo_row)
    req = requests.scratch_request(op)
    assert req.scratch and req.source == base.ClusterRef("local", "hippo")
    assert req.target.name == op.refs["scratch"]["name"] and req.point == LATEST


def test_a_platform_that_keeps_failing_still_cleans_up_then_says_what_is_left(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = request_drill(hippo_row)
    run_step(op)
    Operation.objects.filter(pk=op.pk).update(attempts=loop.MAX_TRANSIENT_FAILURES - 1)
    fake.fail_next = [TransientError("API server timeout")]
    run_step(op)
    assert op.status == "failed"
    assert op.error_reason.startswith(drill_steps.DRILL_GAVE_UP.format(error="API server timeout"))
    assert fake.destroyed == [op.refs["scratch"]["name"]]


def test_a_deletion_that_keeps_failing_says_the_scratch_cluster_is_left(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    third = request_drill(hippo_row)
    run_step(third)
    fake.finish_clone(third.refs["trigger"], third.refs["scratch"]["name"])
    fake.destroy_error = TransientError("API server timeout")
    Operation.objects.filter(pk=third.pk).update(attempts=loop.MAX_TRANSIENT_FAILURES - 1)
    third.refresh_from_db()
    run_step(third)
    assert third.status == "failed"
    assert third.error_reason == drill_steps.DRILL_SCRATCH_LEFT.format(
        scratch=third.refs["scratch"]["name"], error="API server timeout", before="")


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
