"""Drill plans and sealed runs, built directly, for the report's and the Drills page's tests
(the scheduler and the worker have their own)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from restores.models import Cluster, DrillPlan, DrillRun
from restores.models.drills import run_seal
from tests.factories import OperationFactory

POLICY = "BCP-7 §4.2: restore test of every production database"
CHECK_OK = {"check": "accepts writes", "ok": True, "detail": "insert + rollback",
            "command": "BEGIN; CREATE TEMP TABLE t(); ROLLBACK"}
CHECK_ORPHANS = {"check": "no orphaned invoices", "ok": False, "detail": "17 rows",
                 "command": "SELECT count(*) FROM invoices i LEFT JOIN customers c ..."}


def plan_for(cluster: Cluster, *, name: str = "", schedule: str = "0 3 * * *",
             rto: int | None = 300, rpo: int | None = 60, owner: Any = None,
             created_at: dt.datetime | None = None, **kwargs: Any) -> DrillPlan:
    """A daily plan of one cluster, with objectives and a policy."""
    return DrillPlan.objects.create(
        name=name or f"{cluster.name} daily", platform=cluster.platform, scope="cluster",
        namespace=cluster.namespace, cluster_name=cluster.name, schedule=schedule,
        rto_objective_seconds=rto, rpo_objective_seconds=rpo, policy=POLICY, owner=owner,
        created_at=created_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC), **kwargs)


def sealed_run(cluster: Cluster, *, at: dt.datetime, plan: DrillPlan | None = None,
               outcome: str = "passed", rto: float | None = 61.5, rpo: float | None = 12.0,
               checks: list[dict[str, Any]] | None = None, reason: str = "",
               seal: bool = True, requested_by: Any = None) -> DrillRun:
    """A run of `plan` (None: manual) at `at` with its drill operation (none when missed),
    sealed as the worker seals it: evidence, its hash, the audit entry."""
    checks = [CHECK_OK] if checks is None else checks
    scratch = f"{cluster.name}-drill-{abs(hash((cluster.pk, at))) % 0xFFFFFF:06x}"
    op = None
    if outcome != "missed":
        op = OperationFactory(
            cluster=cluster, kind="drill", exclusive=False,
            status="succeeded" if outcome == "passed" else "failed", created_at=at,
            started_at=at, finished_at=at + dt.timedelta(seconds=70),
            requested_by=requested_by, params={"repo": "repo1", "point": {"kind": "latest"}},
            refs={"scratch": {"namespace": cluster.namespace, "name": scratch}},
            result={"rto_seconds": rto, "rpo_seconds": rpo, "checks": checks})
    run = DrillRun.objects.create(
        plan=plan, cluster=cluster, slot_at=at, operation=op, outcome="running",
        scenario={"repo": "repo1", "point": {"kind": "latest", "time": ""},
                  "point_rule": plan.point_text if plan else "chosen by hand",
                  "scratch": f"{cluster.namespace}/{scratch}" if op else "",
                  "checks": [], "policy": plan.policy if plan else ""},
        rto_objective_seconds=plan.rto_objective_seconds if plan else None,
        rpo_objective_seconds=plan.rpo_objective_seconds if plan else None)
    if seal:
        run_seal(run, outcome=outcome, reason=reason or (
            "" if outcome == "passed" else "a check failed"), op=op)
    return run
