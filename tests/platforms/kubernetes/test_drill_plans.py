"""A scheduled drill on Kubernetes (the test API server and the PGO emulator): the beat
starts it, its checks run by `psql` (read-only) and `pg_amcheck` in the scratch cluster's
leader pod, and it deletes only the PostgresCluster it created."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from restores.models import Cluster, DrillRun
from restores.services import drill_schedule
from tests.factories import DrillPlanFactory
from tests.kube.fixtures import NS, Console
from tests.worker import messages

pytestmark = pytest.mark.django_db
DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CHECKS = [
    {"kind": "sql", "name": "databases are there", "database": "app",
     "query": "select count(*) from pg_database", "compare": ">=", "expected": "1"},
    {"kind": "sql", "name": "the session is read-only", "database": "app",
     "query": "select current_setting('default_transaction_read_only')", "compare": "=",
     "expected": "on"},
    {"kind": "amcheck", "database": "app"},
]


def _scheduled(console: Console, hippo: Cluster, **plan: object) -> DrillRun:
    now = timezone.now()
    DrillPlanFactory(platform="kubernetes", namespace=NS, cluster_name="hippo",
                     schedule="* * * * *", scheduled_through=now - dt.timedelta(minutes=1),
                     **plan)
    result = drill_schedule.beat(now=now)
    assert result.started == 1, result
    run = DrillRun.objects.get()
    console.run(run.operation)
    run.refresh_from_db()
    return run


def test_a_scheduled_drill_checks_in_the_scratch_leader_and_deletes_only_its_cluster(
        console: Console, hippo_synced: Cluster, kube_api, hippo_manifest) -> None:  # type: ignore[no-untyped-def]
    console.emu.sql_dsn = DSN
    kube_api.create_cluster(NS, hippo_manifest("bystander"))
    console.emu.settle()
    run = _scheduled(console, hippo_synced, checks=CHECKS, rto_objective_seconds=3600)
    op = run.operation
    assert run.outcome == "passed", (run.reason, messages(op))
    scratch = op.refs["scratch"]["name"]
    checks = {c["check"]: c for c in run.evidence["result"]["checks"]}
    assert checks["databases are there"]["ok"]
    assert checks["the session is read-only"]["detail"] == "returned on, = on as expected"
    assert checks["pg_amcheck"]["ok"]
    # Every check ran in the scratch cluster's leader, never in hippo's.
    pods = {p for p, argv in console.emu.execs if "pg_database" in " ".join(argv)
            or argv[:1] == ["pg_amcheck"]}
    assert pods and all(p.startswith(f"{scratch}-") for p in pods), pods
    command = checks["databases are there"]["command"]
    assert command.startswith(f"kubectl -n {NS} exec {scratch}-") and "PGOPTIONS=" in command
    # Only the scratch PostgresCluster was deleted; hippo and the bystander are untouched.
    assert console.server.calls[("delete", "postgresclusters")] == 1
    assert console.server.store.get("postgresclusters", NS, scratch) is None
    assert console.server.store.get("postgresclusters", NS, "bystander") is not None
    assert console.obj("hippo")["metadata"]["generation"] == 1


def test_a_failing_check_on_kubernetes_fails_the_run_and_still_deletes_the_copy(
        console: Console, hippo_synced: Cluster) -> None:
    console.emu.sql_dsn = DSN
    run = _scheduled(console, hippo_synced, checks=[
        {"kind": "sql", "name": "orders are there", "database": "app",
         "query": "select count(*) from pg_database where datname = 'orders'",
         "compare": ">=", "expected": "1"}])
    assert run.outcome == "failed"
    assert "orders are there: returned 0, expected >= 1" in run.reason
    scratch = run.operation.refs["scratch"]["name"]
    assert console.server.store.get("postgresclusters", NS, scratch) is None
