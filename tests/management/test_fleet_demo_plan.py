"""The demo fleet comes with a nightly drill plan of hippo, made once."""

from __future__ import annotations

import pytest

from restores.management.commands.fleet_demo import demo_plan
from restores.models import AuditEntry, DrillPlan

pytestmark = pytest.mark.django_db


def test_the_demo_plan_drills_hippo_nightly_with_checks_and_is_made_once() -> None:
    plan = demo_plan("hippo", "local")
    assert plan is not None and plan.target_text == "local/local/hippo"
    assert [c["kind"] for c in plan.checks] == ["sql", "not_empty", "amcheck"]
    assert (plan.rto_objective_seconds, plan.schedule) == (600, "30 2 * * *")
    assert demo_plan("hippo", "local") is None
    assert DrillPlan.objects.count() == 1
    assert AuditEntry.objects.filter(action="drill_plan.created").count() == 1
