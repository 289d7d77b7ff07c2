"""Drill plans in the console: created and edited by operators (audited, what changed said),
bad input next to its field with nothing saved, read by viewers; a run's page with its
evidence, and a deficiency's follow-up."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from restores.models import AuditEntry, DrillPlan, DrillRun
from restores.services import drill_schedule
from tests.factories import DrillPlanFactory, user_with_role
from tests.fakes import T0

pytestmark = pytest.mark.django_db

FORM = {
    "name": "hippo weekly", "platform": "local", "scope": "cluster", "namespace": "local",
    "cluster_name": "hippo", "repo": "repo1", "point": "latest", "schedule": "0 3 * * 1",
    "time_zone": "Europe/Paris", "rto_objective_seconds": "600", "policy": "ISO 27001 A.8.13",
    "enabled": "on", "sql_query": "select count(*) from users", "sql_database": "hippo",
    "sql_compare": ">=", "sql_expected": "1000", "amcheck": "on", "tables_database": "hippo",
}


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_an_operator_creates_a_plan_and_the_audit_log_says_so() -> None:
    operator = user_with_role("olga", "operator", platform="local", namespace="local")
    answer = _client(operator).post(reverse("restores:drill_plan_new"), FORM)
    plan = DrillPlan.objects.get()
    assert answer.status_code == 302 and answer["Location"] == plan.get_absolute_url()
    assert (plan.owner, plan.created_by, plan.schedule, plan.time_zone) == (
        operator, operator, "0 3 * * 1", "Europe/Paris")
    assert [c["kind"] for c in plan.checks] == ["sql", "amcheck"]
    entry = AuditEntry.objects.get(action="drill_plan.created")
    assert entry.actor_name == "olga" and entry.params["checks"] == plan.checks
    page = _client(operator).get(plan.get_absolute_url()).content.decode()
    assert "select count(*) from users &gt;= 1000 (in hippo)" in page
    assert "pg_amcheck, heap and btree, of every relation (in hippo)" in page


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"schedule": "every monday"}, "schedule", "is not a cron schedule of five fields"),
    ({"time_zone": "Europe/Pariss"}, "time_zone", "Europe/Pariss is not a time zone"),
    ({"sql_expected": ""}, "checks", "say what the query must return"),
    ({"point": "random", "reconcile_tables": "users"}, "checks",
     "needs a drill of the latest point"),
    ({"point": "offset"}, "offset", "Say how long ago the point is"),
    ({"labels": "tier"}, "labels", "Write labels as key=value"),
])
def test_bad_input_is_said_next_to_its_field_and_nothing_is_saved(
        client: Client, change: dict[str, str], field: str, message: str) -> None:
    answer = client.post(reverse("restores:drill_plan_new"), {**FORM, **change})
    assert answer.status_code == 422
    page = answer.content.decode()
    errors = page[page.index(f'id="field-{field}"'):] if field != "checks" else page
    assert message in errors
    assert not DrillPlan.objects.exists()


def test_an_edit_records_what_changed_and_a_stale_form_is_refused(client: Client) -> None:
    client.post(reverse("restores:drill_plan_new"), FORM)
    plan = DrillPlan.objects.get()
    url = plan.get_absolute_url()
    answer = client.post(url, {**FORM, "rto_objective_seconds": "300", "version": "0"})
    assert answer.status_code == 302
    entry = AuditEntry.objects.get(action="drill_plan.changed")
    assert entry.params["changed"] == {"rto_objective_seconds": {"from": 600, "to": 300}}
    stale = client.post(url, {**FORM, "rto_objective_seconds": "120", "version": "0"})
    assert stale.status_code == 422
    assert "Someone changed this plan since you opened it" in stale.content.decode()
    plan.refresh_from_db()
    assert plan.rto_objective_seconds == 300


def test_a_viewer_reads_a_plan_but_gets_no_form_and_cannot_post() -> None:
    plan = DrillPlanFactory()
    viewer = _client(user_with_role("vera", "viewer", platform="local", namespace="local"))
    page = viewer.get(plan.get_absolute_url())
    assert page.status_code == 200 and 'id="plan-form"' not in page.content.decode()
    assert viewer.post(plan.get_absolute_url(), FORM).status_code == 403
    outsider = _client(user_with_role("otto", "admin", platform="local", namespace="other"))
    assert outsider.get(plan.get_absolute_url()).status_code == 403


def test_a_missed_runs_page_says_why_and_its_follow_up_is_audited(client: Client,
                                                                   hippo_row: Any) -> None:
    DrillPlanFactory(schedule="0 3 * * *", scheduled_through=T0 - dt.timedelta(days=1))
    drill_schedule.beat(now=T0 + dt.timedelta(hours=2))
    run = DrillRun.objects.get()
    page = client.get(run.get_absolute_url()).content.decode()
    assert "the scheduler did not run between the slot at 2026-11-24 03:00 UTC" in page
    assert run.evidence_hash in page
    answer = client.post(reverse("restores:drill_run_remediation", kwargs={"run_id": run.pk}),
                         {"owner": "dba", "status": "in_progress",
                          "note": "beat restarted under systemd"})
    assert answer.status_code == 302
    run.refresh_from_db()
    assert (run.remediation_owner.username, run.remediation_status) == ("dba", "in_progress")
    entry = AuditEntry.objects.get(action="drill_run.remediation")
    assert entry.params["to"]["note"] == "beat restarted under systemd"
    unknown = client.post(reverse("restores:drill_run_remediation", kwargs={"run_id": run.pk}),
                          {"owner": "nobody-here", "status": "open"})
    assert unknown.status_code == 422 and "No user is named nobody-here" in (
        unknown.content.decode())


def test_a_plan_enabled_again_owes_no_slot_for_the_time_it_was_disabled(
        client: Client, hippo_row: Any) -> None:
    client.post(reverse("restores:drill_plan_new"), {**FORM, "schedule": "* * * * *"})
    plan = DrillPlan.objects.get()
    client.post(plan.get_absolute_url(), {**FORM, "schedule": "* * * * *", "enabled": "",
                                          "version": "0"})
    DrillPlan.objects.filter(pk=plan.pk).update(  # a week disabled
        scheduled_through=T0 - dt.timedelta(days=7))
    client.post(plan.get_absolute_url(), {**FORM, "schedule": "* * * * *", "version": "1"})
    plan.refresh_from_db()
    assert plan.enabled and plan.scheduled_through > T0
    drill_schedule.beat()
    assert not DrillRun.objects.filter(outcome="missed").exists()
