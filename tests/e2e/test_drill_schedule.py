"""Drill plans on their schedule, end to end on the local platform: real PostgreSQL and
pgBackRest, a real Celery worker with its embedded beat, nobody logged in.

- a plan whose slot passes while no worker runs is recorded as missed, with the reason;
- a plan on hippo with a SQL check, a pg_amcheck check and an RTO objective runs on its
  schedule, passes, and its scratch cluster is gone;
- a plan with a failing SQL check fails, saying which check and why.

Each plan fires every minute ("* * * * *"), so each waits for the next minute's slot.
"""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from restores.models import Cluster, DrillPlan, DrillRun
from restores.platforms.base import ClusterRef
from restores.services.drill_plans import PlanAnswers, plan_save
from tests.actions import audit_verify

from .conftest import NAMESPACE, E2EFleet, WorkerFactory

pytestmark = pytest.mark.e2e

BEAT = {"DR_DRILL_BEAT_INTERVAL": "2", "DR_DRILL_START_WINDOW": "10",
        "DR_SWEEP_INTERVAL": "2", "DR_INVENTORY_INTERVAL": "3600"}
SLOT_WAIT = 75.0  # the next minute's slot, and the beat that sees it
DRILL_WAIT = 180.0


def _plan(name: str, checks: list[dict], **kw: object) -> DrillPlan:
    plan = plan_save(user=None, answers=PlanAnswers(
        name=name, platform="local", scope="cluster", namespace=NAMESPACE,
        cluster_name="hippo", schedule="* * * * *", time_zone="Europe/Paris", checks=checks,
        policy="ISO 27001 A.8.13", **kw))  # type: ignore[arg-type]
    return plan


def _run_of(plan: DrillPlan, *, outcome_in: tuple[str, ...], timeout: float) -> DrillRun:
    deadline = time.monotonic() + timeout
    while True:
        run = plan.runs.order_by("slot_at").first()
        if run is not None and run.outcome in outcome_in and run.sealed_at is not None:
            return run
        assert time.monotonic() < deadline, (
            f"plan {plan.name}: {run.outcome if run else 'no run'} after {timeout:.0f} s")
        time.sleep(0.5)


USERS = {"kind": "sql", "name": "users are there", "database": "hippo",
         "query": "select count(*) from users", "compare": ">=", "expected": "1000"}


def test_scheduled_plans_miss_while_stopped_then_pass_and_fail_on_their_own(
    transactional_db, hippo_row: Cluster, worker_factory: WorkerFactory,  # type: ignore[no-untyped-def]
    e2e_fleet: E2EFleet,
) -> None:
    # No worker, no beat: the next slot comes and its 10 s window closes.
    stopped = _plan("while stopped", [])
    slot_at = timezone.now().replace(second=0, microsecond=0)
    wait = (slot_at.timestamp() + 60 + 11) - time.time()
    time.sleep(max(wait, 0))
    worker = worker_factory.start(beat=True, env=BEAT)
    missed = _run_of(stopped, outcome_in=("missed",), timeout=30)
    assert missed.operation is None
    assert "the scheduler did not run between the slot at" in missed.reason
    assert "(the beat or the worker was stopped)" in missed.reason
    DrillPlan.objects.filter(pk=stopped.pk).update(enabled=False)

    passing = _plan("hippo every minute", [
        USERS, {"kind": "amcheck", "database": "hippo"},
        {"kind": "not_empty", "database": "hippo", "tables": ["users", "pgbench_accounts"]},
    ], rto_objective_seconds=600)
    run = _run_of(passing, outcome_in=("passed", "failed"), timeout=SLOT_WAIT + DRILL_WAIT)
    assert run.outcome == "passed", (run.reason, worker.tail()[-3000:])
    assert run.operation.requested_by is None
    checks = {c["check"]: c for c in run.evidence["result"]["checks"]}
    assert checks["users are there"]["detail"] == "returned 1000, >= 1000 as expected"
    assert checks["pg_amcheck"]["ok"] and "pg_amcheck" in checks["pg_amcheck"]["command"]
    assert checks["restored size"]["ok"]
    assert run.rto_seconds is not None and run.rto_seconds <= 600
    scratch = run.operation.refs["scratch"]["name"]
    assert not e2e_fleet.platform.cluster_exists(ClusterRef(NAMESPACE, scratch))
    DrillPlan.objects.filter(pk=passing.pk).update(enabled=False)

    failing = _plan("hippo with too many users", [
        {**USERS, "name": "a million users", "expected": "1000000"}])
    bad = _run_of(failing, outcome_in=("passed", "failed"), timeout=SLOT_WAIT + DRILL_WAIT)
    DrillPlan.objects.filter(pk=failing.pk).update(enabled=False)
    assert bad.outcome == "failed"
    assert "a million users: returned 1000, expected >= 1000000" in bad.reason
    scratch = bad.operation.refs["scratch"]["name"]
    assert not e2e_fleet.platform.cluster_exists(ClusterRef(NAMESPACE, scratch))
    assert audit_verify()[0] == 0
