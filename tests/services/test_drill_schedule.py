"""The drill scheduler's beat: slots into runs, one drill per cluster, at most
DR_DRILL_CONCURRENCY per platform, missed runs with their reason, sealed; the queries of a
beat do not grow with the plans, the clusters or the runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from restores import inventory
from restores.models import AuditEntry, Cluster, DrillPlan, DrillRun, Operation
from restores.models.drills import evidence_verify
from restores.services import drill_schedule
from restores.services.access import AccessDenied
from tests.actions import request_backup
from tests.factories import DrillPlanFactory
from tests.fakes import T0, FakePlatform, make_backup

pytestmark = pytest.mark.django_db


def _fleet(fake: FakePlatform, names: list[str]) -> None:
    for name in names:
        fake.add(name, backups=[make_backup(f"20261124-0900{len(name):02d}F", stop=T0)])
    inventory.platform_sync(platform_name="local")


def test_a_due_slot_becomes_a_run_that_starts_a_drill_with_the_plans_checks(
        hippo_row: Cluster) -> None:
    plan = DrillPlanFactory(rto_objective_seconds=600, policy="ISO 27001 A.8.13, monthly",
                            checks=[{"kind": "not_empty", "name": "users has rows",
                                     "database": "hippo", "tables": ["users"]}])
    result = drill_schedule.beat(now=T0 + dt.timedelta(minutes=5))
    assert (result.slots, result.runs_created, result.started, result.missed) == (1, 1, 1, 0)
    run = DrillRun.objects.get()
    assert (run.plan, run.cluster, run.slot_at, run.outcome) == (plan, hippo_row, T0, "running")
    assert run.start_by == T0 + dt.timedelta(hours=1)
    op = run.operation
    assert op.kind == "drill" and op.requested_by is None
    requested = AuditEntry.objects.get(action="operation.requested", operation_id=op.pk)
    assert requested.actor_name == f"schedule:{plan.name}"
    assert op.params["plan"] == plan.name and op.params["checks"] == plan.checks
    assert op.params["objectives"] == {"rto_seconds": 600, "rpo_seconds": None}
    assert run.scenario["policy"] == "ISO 27001 A.8.13, monthly"
    assert run.scenario["scratch"] == f"local/{op.refs['scratch']['name']}"
    plan.refresh_from_db()
    assert plan.scheduled_through == T0
    # The next beat within the hour has nothing to queue and nothing to start.
    again = drill_schedule.beat(now=T0 + dt.timedelta(minutes=6))
    assert (again.slots, again.runs_created, again.started) == (0, 0, 0)
    assert DrillRun.objects.count() == 1


def test_a_slot_that_passed_while_the_scheduler_was_stopped_is_missed_and_sealed(
        hippo_row: Cluster) -> None:
    plan = DrillPlanFactory(schedule="0 3 * * *", scheduled_through=T0 - dt.timedelta(days=1))
    result = drill_schedule.beat(now=T0 + dt.timedelta(hours=2))  # 03:00 came and went
    assert (result.started, result.missed) == (0, 1)
    run = DrillRun.objects.get()
    assert run.outcome == "missed" and run.operation is None
    assert run.reason == (
        "Not started: the scheduler did not run between the slot at 2026-11-24 03:00 UTC and "
        "the end of its window at 2026-11-24 04:00 UTC (the beat or the worker was stopped).")
    assert run.remediation_status == "open" and run.sealed_at is not None
    entry = AuditEntry.objects.get(action="drill.evidence_sealed")
    assert entry.params["runs"] == [{"run": run.pk, "evidence_sha256": run.evidence_hash}]
    assert evidence_verify() == []
    assert plan.runs.count() == 1


def test_one_drill_per_platform_at_a_time_and_the_rest_missed_once_their_window_closes(
        fake: FakePlatform, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_DRILL_CONCURRENCY = 1
    _fleet(fake, ["alpha", "beta", "gamma"])
    DrillPlanFactory(scope=DrillPlan.Scope.NAMESPACE, cluster_name="")
    first = drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    assert (first.runs_created, first.started) == (3, 1)
    assert DrillRun.objects.filter(outcome="queued").count() == 2
    closed = drill_schedule.beat(now=T0 + dt.timedelta(hours=1, minutes=1))
    assert closed.missed == 2
    missed = DrillRun.objects.filter(outcome="missed", slot_at=T0)
    assert {r.reason for r in missed} == {
        "Not started within its window (until 2026-11-24 10:00 UTC): the local platform "
        "already ran 1 drill(s) at once (DR_DRILL_CONCURRENCY)."}
    assert evidence_verify() == []


def test_a_cluster_with_a_drill_running_waits_and_says_so_when_it_misses(
        hippo_row: Cluster) -> None:
    DrillPlanFactory(name="hourly")
    DrillPlanFactory(name="also hourly")
    result = drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    assert (result.runs_created, result.started) == (2, 1)
    drill_schedule.beat(now=T0 + dt.timedelta(hours=1))
    waited = DrillRun.objects.get(outcome="missed")
    assert waited.reason.endswith("another drill of local/hippo was running the whole time.")


def test_a_refused_start_is_the_runs_failure_in_words(fake: FakePlatform) -> None:
    fake.add("empty", backups=[])
    inventory.platform_sync(platform_name="local")
    DrillPlanFactory(cluster_name="empty")
    result = drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    assert result.failed_to_start == 1
    run = DrillRun.objects.get()
    assert run.outcome == "failed" and run.sealed_at is not None
    assert run.reason == "The drill could not start: empty has no backup in repo1: a drill has " \
                         "nothing to restore."


def test_plans_match_by_namespace_name_pattern_and_labels_never_a_scratch_copy(
        fake: FakePlatform) -> None:
    _fleet(fake, ["pay-eu", "pay-us", "web"])
    Cluster.objects.filter(name="pay-us").update(labels={"tier": "gold"})
    Cluster.objects.filter(name="pay-eu").update(labels={"tier": "bronze"})
    by_name = DrillPlanFactory(scope="match", cluster_name="", name_pattern="pay-*")
    by_label = DrillPlanFactory(scope="match", cluster_name="", namespace="",
                                labels={"tier": "gold"})
    rows = {c.name: c for c in Cluster.objects.all()}
    assert [n for n, c in rows.items() if by_name.covers(c)] == ["pay-eu", "pay-us"]
    assert [n for n, c in rows.items() if by_label.covers(c)] == ["pay-us"]
    Cluster.objects.filter(name="pay-us").update(drill=True)
    assert not by_label.covers(Cluster.objects.get(name="pay-us"))


def test_nothing_acts_on_a_drills_scratch_copy(hippo_row: Cluster) -> None:
    Cluster.objects.filter(pk=hippo_row.pk).update(drill=True)
    hippo_row.refresh_from_db()
    with pytest.raises(AccessDenied, match="hippo is a drill's scratch copy: the console does "
                                           "not back up it"):
        request_backup(hippo_row)
    assert not Operation.objects.exists()


def test_the_inventory_marks_a_drills_scratch_cluster(fake: FakePlatform,
                                                      hippo_row: Cluster) -> None:
    drill_plan = DrillPlanFactory()
    drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    scratch = drill_plan.runs.get().operation.refs["scratch"]["name"]
    fake.add(scratch)
    inventory.platform_sync(platform_name="local")
    assert Cluster.objects.get(name=scratch).drill is True
    assert Cluster.objects.get(name="hippo").drill is False


def _beat_queries(fake: FakePlatform, size: int, settings) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Queries of a beat where every plan is due (one per cluster), then of a steady one."""
    settings.DR_DRILL_CONCURRENCY = 2
    names = [f"c{size}-{i:03d}" for i in range(size)]
    _fleet(fake, names)
    for name in names:
        DrillPlanFactory(name=f"plan {name}", cluster_name=name)
    with CaptureQueriesContext(connection) as due:
        result = drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    assert (result.runs_created, result.started) == (size, 2)
    with CaptureQueriesContext(connection) as steady:
        drill_schedule.beat(now=T0 + dt.timedelta(minutes=2))
    return len(due), len(steady)


def test_a_beat_makes_as_many_queries_at_5_plans_as_at_40(fake: FakePlatform,
                                                          settings) -> None:  # type: ignore[no-untyped-def]
    small = _beat_queries(fake, 5, settings)
    DrillRun.objects.all().delete()
    Operation.objects.all().delete()
    DrillPlan.objects.all().delete()
    large = _beat_queries(fake, 40, settings)
    assert small == large, (small, large)


def test_a_cancelled_drills_run_is_sealed_by_the_next_beat(hippo_row: Cluster) -> None:
    DrillPlanFactory()
    drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    run = DrillRun.objects.get()
    Operation.objects.filter(pk=run.operation_id).update(status="cancelled")
    result = drill_schedule.beat(now=T0 + dt.timedelta(minutes=2))
    run.refresh_from_db()
    assert result.sealed_late == 1
    assert (run.outcome, run.reason) == ("failed", "The drill's operation was cancelled.")
    assert evidence_verify() == []
