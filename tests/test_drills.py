"""The drill service and its reconcile steps, against the fake platform."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from restores import inventory, rules
from restores.models import Cluster, Operation, requests
from restores.platforms import base
from restores.platforms.base import PermanentError, TransientError
from restores.platforms.targets import RestoreTarget, target_to_json
from restores.services import backups, drills
from restores.services.errors import ServiceError
from restores.steps import drills as drill_steps
from restores.steps import loop
from tests.actions import LATEST, request_drill
from tests.factories import ClusterFactory
from tests.fakes import T0, FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db

def _restored(fake: FakePlatform, op: Operation, **kwargs: object) -> Operation:
    """Run the drill until its scratch clone is launched, then let the clone finish."""
    run_step(op)
    assert op.step == "restoring"
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"], **kwargs)  # type: ignore[arg-type]
    return run_step(op)


# --- the service ----------------------------------------------------------------------------


def test_it_names_the_scratch_cluster_before_anything_is_applied(hippo_row: Cluster,
                                                                  dispatched: list[str]) -> None:
    op = request_drill(hippo_row)
    name = f"hippo-drill-{op.id.hex[:6]}"
    assert op.kind == "drill" and op.exclusive is False and op.status == "pending"
    assert op.refs == {"trigger": str(op.id), "scratch": {"namespace": "local", "name": name}}
    assert op.params["point"] == target_to_json(RestoreTarget())  # the one stored form
    assert op.params["point"]["kind"] == "latest" and op.params["point"]["time"] == ""
    assert dt.datetime.fromisoformat(op.params["requested_at"]) <= timezone.now()
    assert op.events.get().message == (
        f"Drill of hippo from repo1 at latest requested: scratch cluster {name}.")


def test_the_scratch_name_fits_the_platforms_rules() -> None:
    op_id = uuid.UUID("3fa2c1d4-0000-4000-8000-000000000000")
    assert drills.scratch_name("hippo", op_id) == "hippo-drill-3fa2c1"
    long = drills.scratch_name("a" * 26 + "-" + "b" * 20, op_id)
    assert long == "a" * 26 + "-drill-3fa2c1" and len(long) <= drills.SCRATCH_NAME_MAX


def test_it_allows_one_drill_per_cluster_at_a_time(hippo_row: Cluster) -> None:
    request_drill(hippo_row)
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_ALREADY_RUNNING.format(cluster="hippo")


def test_a_backup_may_run_during_a_drill(hippo_row: Cluster) -> None:
    request_drill(hippo_row)
    backup = backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="incr",
                                     user=None)
    assert backup.status == "pending"
    # ... and a drill may start while a backup runs.
    Operation.objects.filter(kind="drill").update(status="succeeded")
    assert request_drill(hippo_row).status == "pending"


def test_it_refuses_a_cluster_no_longer_present(hippo_row: Cluster) -> None:
    hippo_row.present = False
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_CLUSTER_GONE.format(cluster="hippo")


def test_it_refuses_a_repo_without_a_backup(fake: FakePlatform) -> None:
    fake.add("empty")
    inventory.platform_sync(platform_name="local")
    with pytest.raises(ServiceError) as err:
        request_drill(Cluster.objects.get(name="empty"))
    assert err.value.message == drills.DRILL_REPO_EMPTY.format(cluster="empty", repo="repo1")
    assert err.value.field == "repo"


def test_it_refuses_a_point_outside_the_window(hippo_row: Cluster) -> None:
    late = RestoreTarget(kind="time", time=T0 + dt.timedelta(hours=3))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, late)
    assert err.value.field == "time"
    assert err.value.message == rules.TIME_AFTER_WINDOW.format(
        when="2026-11-24 12:00:00 UTC", repo="repo1", latest="2026-11-24 10:00:00 UTC")
    early = RestoreTarget(kind="time", time=T0 - dt.timedelta(hours=1))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, early)
    assert "before the recoverable window" in err.value.message


def test_it_refuses_other_kinds_of_point(hippo_row: Cluster) -> None:
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, RestoreTarget(kind="lsn", lsn="0/3000060"))
    assert err.value.message == drills.DRILL_POINT_KINDS


def test_it_refuses_a_platform_that_cannot_drill(hippo_row: Cluster, fake: FakePlatform,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "drills", False)
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_NOT_ON_PLATFORM.format(platform="local",
                                                                    cluster="hippo")


def test_it_refuses_when_the_scratch_name_is_taken(hippo_row: Cluster,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    op_id = uuid.UUID("abcdef12-0000-4000-8000-000000000000")
    monkeypatch.setattr(drills.uuid, "uuid4", lambda: op_id)
    ClusterFactory(name="hippo-drill-abcdef")
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.SCRATCH_NAME_TAKEN.format(name="hippo-drill-abcdef",
                                                                 namespace="local")
    assert not Operation.objects.exists()


# --- the steps ------------------------------------------------------------------------------


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
    assert [c["check"] for c in r["checks"]] == ["accepts writes", "same system", "databases"]
    assert all(c["ok"] for c in r["checks"])
    assert r["verification"]["databases"][0] == {"name": "hippo", "size_bytes": 30_000_000,
                                                 "user_tables": 3}
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
    assert [c["ok"] for c in op.result["checks"]] == [False, False, False]
    assert op.result["destroyed_at"] and "rto_seconds" in op.result


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
