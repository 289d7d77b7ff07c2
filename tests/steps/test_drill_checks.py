"""A plan's checks in a drill's steps: each records its query, its result and when; a run
passes only when every check passes and the objectives are met, and says which failed and
why, in words; the evidence, once sealed, is in the audit chain."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from restores.models import Cluster, DrillRun
from restores.platforms.base import PermanentError
from restores.services import drill_schedule
from restores.steps import drills as drill_steps
from tests.actions import audit_verify
from tests.factories import DrillPlanFactory
from tests.fakes import T0, FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db
COUNT = 'select count(*) from "users"'


def _drill(fake: FakePlatform, checks: list[dict[str, Any]], *, promoted_after: float = 7.5,
           **plan: Any) -> DrillRun:
    """A plan with `checks` on hippo, its slot due, its drill run to the end."""
    DrillPlanFactory(checks=checks, **plan)
    drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    run = DrillRun.objects.get()
    op = run_step(run.operation)
    promoted = op.created_at + dt.timedelta(seconds=promoted_after)
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"],
                      promoted_at=f"{promoted.timestamp():.3f}")
    run_step(op)
    run.refresh_from_db()
    return run


SQL_CHECK = {"kind": "sql", "name": "orders are there", "database": "hippo",
             "query": "select count(*) from orders", "compare": ">=", "expected": "1000"}


def test_a_plan_whose_checks_pass_passes_with_each_checks_evidence(
        fake: FakePlatform, hippo_row: Cluster) -> None:
    fake.answers = {"select count(*) from orders": [("1204",)],
                    'select exists (select 1 from "users")': [("t",)],
                    'select max("created_at") from "users"': [
                        ((T0 + dt.timedelta(minutes=50)).isoformat(),)]}
    run = _drill(fake, [SQL_CHECK,
                        {"kind": "not_empty", "database": "hippo", "tables": ["users"]},
                        {"kind": "newest_row", "database": "hippo", "table": "users",
                         "column": "created_at"},
                        {"kind": "amcheck", "database": "hippo"}],
                 rto_objective_seconds=60, rpo_objective_seconds=3600 * 24 * 30)
    assert run.outcome == "passed", run.reason
    checks = {c["check"]: c for c in run.evidence["result"]["checks"]}
    sql = checks["orders are there"]
    assert (sql["ok"], sql["detail"]) == (True, "returned 1204, >= 1000 as expected")
    assert sql["command"] == "psql -c select count(*) from orders" and sql["at"]
    assert sql["result"] == {"value": "1204", "expected": "1000"}
    assert checks["critical tables not empty"]["detail"] == "every one has rows: users"
    assert checks["newest users.created_at inside the window"]["ok"]
    assert checks["pg_amcheck"]["detail"] == "no corruption found in every relation of hippo"
    assert run.rto_seconds == 7.5 and run.rto_objective_seconds == 60
    # The checks ran in the scratch copy, never in the source.
    scratch = run.operation.refs["scratch"]["name"]
    assert {name for name, _, _ in fake.queried} == {scratch}
    assert audit_verify()[0] == 0


def test_a_failing_sql_check_fails_the_run_naming_the_check_and_why(
        fake: FakePlatform, hippo_row: Cluster) -> None:
    fake.answers = {"select count(*) from orders": [("12",)]}
    run = _drill(fake, [SQL_CHECK])
    assert run.outcome == "failed"
    assert "orders are there: returned 12, expected >= 1000" in run.reason
    assert run.operation.status == "failed" and run.remediation_status == "open"
    assert fake.destroyed == [run.operation.refs["scratch"]["name"]]


def test_a_check_that_cannot_run_fails_saying_what_postgresql_said(
        fake: FakePlatform, hippo_row: Cluster) -> None:
    fake.answers = {"select count(*) from orders": PermanentError(
        'hippo-drill rejected the statement: relation "orders" does not exist')}
    run = _drill(fake, [SQL_CHECK])
    assert run.outcome == "failed"
    assert 'could not run: hippo-drill rejected the statement: relation "orders" does not ' \
           "exist" in run.reason


def test_pg_amcheck_findings_fail_the_run(fake: FakePlatform, hippo_row: Cluster) -> None:
    fake.amcheck_findings = 'heap table "hippo.public.users", block 3: line pointer corrupt'
    run = _drill(fake, [{"kind": "amcheck", "database": "hippo", "relations": ["users"]}])
    assert run.outcome == "failed"
    assert 'pg_amcheck: found: heap table "hippo.public.users", block 3' in run.reason


def test_an_rto_over_its_objective_fails_a_verified_copy(fake: FakePlatform,
                                                         hippo_row: Cluster) -> None:
    run = _drill(fake, [], promoted_after=95, rto_objective_seconds=60)
    assert run.outcome == "failed"
    assert run.reason == ("The drill restored and verified the copy, but missed its "
                          "objectives: RTO 95.0 s exceeds the objective of 60 s.")
    assert run.operation.error_fix == drill_steps.DRILL_OBJECTIVES_FIX


def test_a_reconciliation_counts_the_copy_against_the_source_read_only(
        fake: FakePlatform, hippo_row: Cluster) -> None:
    answers: dict[str, Any] = {COUNT: [("1000",)]}
    fake.answers = answers
    run = _drill(fake, [{"kind": "reconcile", "database": "hippo", "tables": ["users"],
                         "tolerance": 5}])
    assert run.outcome == "passed", run.reason
    (check,) = [c for c in run.evidence["result"]["checks"] if c["kind"] == "reconcile"]
    assert check["result"] == {"users": {"copy": 1000, "source": 1000}}
    scratch = run.operation.refs["scratch"]["name"]
    assert [(n, sql) for n, _, sql in fake.queried] == [(scratch, COUNT), ("hippo", COUNT)]


def test_a_copy_too_far_behind_the_source_fails_the_reconciliation(
        fake: FakePlatform, hippo_row: Cluster) -> None:
    counts = iter([[("900",)], [("1000",)]])

    class Counts(dict):  # the copy answers first, then the source
        def get(self, key: str, default: Any = None) -> Any:
            return next(counts) if key == COUNT else default

    fake.answers = Counts()
    run = _drill(fake, [{"kind": "reconcile", "database": "hippo", "tables": ["users"],
                         "tolerance": 5}])
    assert run.outcome == "failed"
    assert ("users has 900 rows in the copy, 1,000 in the source (tolerance 5 rows)"
            in run.reason)
