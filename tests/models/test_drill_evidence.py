"""A run's evidence is written once and its hash sealed into the audit chain: changing a
stored result afterwards makes audit_verify fail naming the run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from restores.models import Cluster, DrillRun
from restores.models.drills import run_seal
from restores.services import drill_schedule
from tests.actions import audit_verify
from tests.factories import DrillPlanFactory
from tests.fakes import T0, FakePlatform
from tests.worker import run_step, run_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def passed_run(fake: FakePlatform, hippo_row: Cluster) -> DrillRun:
    DrillPlanFactory(rto_objective_seconds=600)
    drill_schedule.beat(now=T0 + dt.timedelta(minutes=1))
    run = DrillRun.objects.get()
    op = run_step(run.operation)  # the scratch clone launched
    fake.finish_clone(op.refs["trigger"], op.refs["scratch"]["name"])
    run_until_done(op, limit=10)
    run.refresh_from_db()
    assert run.outcome == "passed", run.reason
    return run


def test_an_intact_run_verifies(passed_run: DrillRun) -> None:
    code, out, _ = audit_verify()
    assert code == 0 and "drill evidence intact" in out


def test_a_changed_rto_in_the_database_fails_audit_verify_naming_the_run(
        passed_run: DrillRun) -> None:
    with connection.cursor() as cursor:  # what someone with database access could do
        cursor.execute("update restores_drillrun set evidence = jsonb_set(evidence, "
                       "'{measured,rto_seconds}', '1.0'), rto_seconds = 1.0 where id = %s",
                       [passed_run.pk])
    code, _, err = audit_verify()
    assert code == 1
    assert f"drill evidence CHANGED: drill run #{passed_run.pk} (local/hippo, 2026-11-24 " \
           "09:00 UTC): its stored evidence no longer matches the hash sealed" in err


def test_a_rehashed_change_or_a_changed_operation_result_is_caught_too(
        passed_run: DrillRun) -> None:
    from restores.models.drills import evidence_digest

    evidence = {**passed_run.evidence, "outcome": "passed", "reason": "edited"}
    DrillRun.objects.filter(pk=passed_run.pk).update(evidence=evidence,
                                                     evidence_hash=evidence_digest(evidence))
    assert audit_verify()[0] == 1
    DrillRun.objects.filter(pk=passed_run.pk).update(evidence=passed_run.evidence,
                                                     evidence_hash=passed_run.evidence_hash)
    assert audit_verify()[0] == 0
    op = passed_run.operation
    op.result = {**op.result, "rto_seconds": (op.result.get("rto_seconds") or 0) + 1000.0}
    op.save(update_fields=["result"])
    code, _, err = audit_verify()
    assert code == 1 and f"drill run #{passed_run.pk}" in err


def test_a_run_is_sealed_once(passed_run: DrillRun) -> None:
    assert run_seal(passed_run, outcome="failed", reason="again") is False
    passed_run.refresh_from_db()
    assert (passed_run.outcome, passed_run.reason) == ("passed", "")
