"""Hostile input, generated: every form and every query parameter, never a 5xx; a refusal
carries its message; invalid input creates no operation and no draft.

The examples run are counted (tests/hypothesis_counts.py) and printed at the end of the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restores.models import CloneDraft, Cluster, Operation
from tests import hypothesis_counts
from tests.factories import OperationFactory

pytestmark = pytest.mark.django_db

EXAMPLES = 100
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# What breaks parsers: non-ASCII digits, numbers past any column, markup, control
# characters, the far ends of the calendar.
NASTY = st.sampled_from([
    "", " ", "²", "١٢", "9" * 30, "-1", "0", "1e9", "NaN", "<script>x</script>", "'; drop",
    "\x00", "\u202e", "a" * 3000, "repo1", "repo9", "full", "latest", "time", "hippo",
    "hippo ", "../../etc", "%00", "{{x}}",
])
TEXT = st.one_of(NASTY, st.text(max_size=60))
DATE = st.one_of(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
                 .map(str), NASTY)
CLOCK = st.one_of(st.times().map(lambda t: t.isoformat()), NASTY)
ZONE = st.sampled_from(["UTC", "Asia/Kolkata", "Pacific/Kiritimati", "Etc/GMT+12",
                        "America/St_Johns", "Nowhere/Land", ""])


def fields(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the form's fields, each with hostile or plausible values."""
    return st.fixed_dictionaries({}, optional=strategies)


def check(client: Client, method: str, url: str, data: dict[str, Any], *,
          creates: bool = True, hx: bool = False) -> None:
    """The answer is never a server error; a 422 says why; an answer that did not go on to
    a result page created no operation (and, `creates` False, no draft)."""
    hypothesis_counts.count(resolve(url.split("?")[0]).url_name or url)
    ops, drafts = Operation.objects.count(), CloneDraft.objects.count()
    extra = {"HTTP_HX_REQUEST": "true"} if hx else {}
    call: Callable[..., Any] = client.get if method == "GET" else client.post
    response = call(url, data, **extra)
    assert response.status_code < 500, (url, data, response.status_code)
    if response.status_code == 422 and response.get("Content-Type", "").startswith("text/html"):
        assert 'role="alert"' in response.content.decode(), (url, data)
    went_on = response.status_code in (301, 302) or "HX-Redirect" in response
    if not went_on:
        assert Operation.objects.count() == ops, (url, data)
    if not creates:
        assert CloneDraft.objects.count() == drafts, (url, data)


def test_hostile_query_parameters_of_any_list_or_poll_are_never_a_server_error(
    client: Client, hippo_row: Cluster
) -> None:
    op = OperationFactory(cluster=hippo_row, status="running")

    @SETTINGS
    @given(page=TEXT, q=TEXT, v=TEXT, cluster=TEXT, outcome=TEXT, user=TEXT, action=TEXT,
           since=DATE, until=DATE, s=TEXT, b=TEXT, backups=TEXT, hx=st.booleans())
    def run(**params: Any) -> None:
        hx = params.pop("hx")
        for url in ("/", hippo_row.get_absolute_url(), op.get_absolute_url(), "/drills/",
                    "/drills.csv", "/audit/", "/audit.csv"):
            check(client, "GET", url, params, hx=hx)

    run()


def test_hostile_input_to_the_cluster_forms_is_never_a_server_error(
    client: Client, hippo_row: Cluster
) -> None:
    base = hippo_row.get_absolute_url()

    @SETTINGS
    @given(data=fields(repo=TEXT, backup_type=TEXT, kind=TEXT, at=TEXT, name=TEXT,
                       namespace=TEXT, confirm=TEXT, primary_gone=TEXT, acknowledge=TEXT),
           hx=st.booleans())
    def run(data: dict[str, Any], hx: bool) -> None:
        for path in ("backup/", "drill/", "standby/", "promote/", "shutdown/", "start/"):
            check(client, "POST", base + path, data, hx=hx)

    run()


def test_hostile_input_to_the_in_place_restore_form_is_never_a_server_error(
    client: Client, hippo_databases: Cluster
) -> None:
    url = hippo_databases.get_absolute_url() + "restore/"

    @SETTINGS
    @given(data=fields(kind=st.sampled_from(["latest", "time", "set", "immediate", "lsn",
                                             "xid", "name", "x"]),
                       date=DATE, clock=CLOCK, zone=ZONE, label=TEXT, lsn=TEXT, xid=TEXT,
                       name=TEXT, db_include=st.lists(TEXT, max_size=3),
                       safety_backup=TEXT, exclusive=TEXT,
                       confirm=st.sampled_from(["hippo", "hippo ", "", "x"])),
           hx=st.booleans())
    def run(data: dict[str, Any], hx: bool) -> None:
        check(client, "POST", url, data, hx=hx)

    run()


def test_hostile_input_to_the_clone_wizard_is_never_a_server_error(
    client: Client, hippo_row: Cluster
) -> None:
    draft = CloneDraft.objects.create(source=hippo_row, repo_name="repo1", reached="review",
                                      point={"kind": "latest"},
                                      target={"name": "elephant", "namespace": "local"})

    @SETTINGS
    @given(data=fields(source=TEXT, repo=TEXT, origin=TEXT, kind=TEXT, date=DATE, clock=CLOCK,
                       zone=ZONE, label=TEXT, lsn=TEXT, xid=TEXT, name=TEXT, namespace=TEXT,
                       storage=TEXT, process_max=TEXT, db_include=st.lists(TEXT, max_size=3),
                       version=TEXT, _preview=st.sampled_from(["", "1"])),
           hx=st.booleans())
    def run(data: dict[str, Any], hx: bool) -> None:
        for step in ("source", "point", "target"):
            check(client, "POST", f"/clone/{draft.pk}/{step}/", data, hx=hx)
        check(client, "POST", f"/clone/{draft.pk}/submit/", data, hx=hx)

    run()


def test_a_new_draft_is_made_only_from_a_cluster_the_console_knows(client: Client,
                                                                   hippo_row: Cluster) -> None:
    @SETTINGS
    @given(source=TEXT.filter(lambda s: s != "" and s != str(hippo_row.pk)))
    def run(source: str) -> None:
        check(client, "POST", "/clone/", {"source": source}, creates=False)

    run()
    assert client.post("/clone/", {"source": hippo_row.pk}).status_code == 302
    assert client.post("/clone/", {}).status_code == 302  # the Fleet page's blank wizard


def test_hostile_input_to_the_approval_forms_is_never_a_server_error(
    client: Client, hippo_row: Cluster
) -> None:
    op = OperationFactory(cluster=hippo_row, kind="shutdown", status="awaiting_approval",
                          params={})

    @SETTINGS
    @given(reason=TEXT)
    def run(reason: str) -> None:
        check(client, "POST", op.get_absolute_url() + "reject/", {"reason": reason})
        op.refresh_from_db()
        if op.status != "awaiting_approval":  # a valid reason rejected it: wait again
            type(op).objects.filter(pk=op.pk).update(status="awaiting_approval")

    run()


@pytest.mark.parametrize("date, clock, zone", [
    ("9999-12-31", "23:59:59", "Etc/GMT+12"),  # UTC would be in year 10000
    ("0001-01-01", "00:00:00", "Asia/Tokyo"),  # UTC would be in year 0
])
def test_the_far_ends_of_the_calendar_are_refused_next_to_the_time(
    client: Client, hippo_row: Cluster, date: str, clock: str, zone: str
) -> None:
    point = {"kind": "time", "date": date, "clock": clock, "zone": zone}
    restore = client.post(hippo_row.get_absolute_url() + "restore/", {**point, "confirm": "hippo"})
    draft = CloneDraft.objects.create(source=hippo_row, repo_name="repo1", reached="point")
    wizard = client.post(f"/clone/{draft.pk}/point/", point)
    for r in (restore, wizard):
        assert r.status_code == 422
        assert "is outside the dates the console can handle" in r.content.decode()
    assert not Operation.objects.exists()


def test_numbers_no_column_can_hold_and_other_digits_are_ignored(client: Client,
                                                                 hippo_row: Cluster) -> None:
    for query in ("cluster=9999999999999999999", "cluster=²", "page=١٢", "page=-3",
                  "cluster=0", "page=99999999999999999999999"):
        assert client.get(f"/drills/?{query}").status_code == 200, query
        assert client.get(f"/?{query}").status_code == 200, query
    assert client.post(f"/clone/{uuid_of_a_draft(hippo_row)}/submit/",
                       {"version": "²"}).status_code == 422


def uuid_of_a_draft(hippo_row: Cluster) -> str:
    return str(CloneDraft.objects.create(source=hippo_row, repo_name="repo1").pk)


def test_hostile_input_to_drill_plans_runs_and_reports_is_never_a_server_error(
    client: Client, hippo_row: Cluster
) -> None:
    from restores.models import DrillRun
    from tests.factories import DrillPlanFactory
    from tests.fakes import T0

    plan = DrillPlanFactory()
    run = DrillRun.objects.create(plan=plan, cluster=hippo_row, slot_at=T0, outcome="failed")
    CHECKS = st.one_of(TEXT, st.sampled_from([
        '[{"kind": "sql"}]', '[{"kind": "reconcile", "tables": "x", "tolerance": "-9"}]',
        '{"kind": "sql"}', '[1, null]', '[{"kind": "amcheck", "relations": [1]}]']))

    @SETTINGS
    @given(data=fields(name=TEXT, platform=TEXT, scope=TEXT, namespace=TEXT,
                       cluster_name=TEXT, name_pattern=TEXT, labels=TEXT, repo=TEXT,
                       point=TEXT, offset=TEXT, offset_unit=TEXT, schedule=TEXT,
                       time_zone=st.one_of(ZONE, TEXT), rto_objective_seconds=TEXT,
                       rpo_objective_seconds=TEXT, owner=TEXT, policy=TEXT, enabled=TEXT,
                       sql_query=TEXT, sql_compare=TEXT, sql_expected=TEXT,
                       tables_not_empty=TEXT, newest_row=TEXT, amcheck=TEXT,
                       reconcile_tables=TEXT, reconcile_tolerance=TEXT, more_checks=CHECKS,
                       version=TEXT, status=TEXT, note=TEXT),
           report=fields(**{"from": st.one_of(DATE, TEXT), "to": st.one_of(DATE, TEXT),
                            "tz": st.one_of(ZONE, TEXT), "platform": TEXT,
                            "namespace": TEXT}))
    def run_(data: dict[str, Any], report: dict[str, Any]) -> None:
        for url in ("/drills/plans/new/", plan.get_absolute_url(),
                    f"/drills/runs/{run.pk}/remediation/"):
            check(client, "POST", url, data)
        for url in ("/drills/report/", "/drills/report.csv", "/drills/report.json"):
            check(client, "GET", url, report)

    run_()
