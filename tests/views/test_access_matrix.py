"""Every URL, every role: generated from the URL conf, so a new URL without a role check (or
without a declared role) fails here.

For each mutating URL (one that takes a POST) an anonymous user is sent to the login page, and
a viewer in scope, an operator out of scope and anyone below the URL's role get 403, with
nothing created or changed; the role it needs, in scope, is let through (the check cannot be
"refuse everything"). Pages that only read answer 403 out of scope. `ROLE_MATRIX` is the
matrix the README and the closing note show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from restores.models import (
    AuditEntry,
    CloneDraft,
    Cluster,
    DrillPlan,
    DrillRun,
    Grant,
    Operation,
    ReportSignoff,
)
from tests.factories import (
    BackupFactory,
    ClusterFactory,
    OperationFactory,
    RepositoryFactory,
    user_with_role,
)
from tests.fakes import T0, FakePlatform

pytestmark = pytest.mark.django_db

NS, OTHER_NS = "team-a", "team-b"

# The least role each mutating URL needs (None: any logged-in user, e.g. logging out). A
# mutating URL missing here fails test_every_mutating_url_declares_its_role.
ROLE_MATRIX: dict[str, str | None] = {
    "logout": None,
    "restores:backup_create": "operator",
    "restores:drill_create": "operator",
    "restores:drill_plan_new": "operator",
    "restores:drill_plan": "operator",
    "restores:drill_run_remediation": "operator",
    "restores:drill_report_prepare": "operator",
    "restores:drill_report_sign": "admin",
    "restores:cluster_standby": "operator",
    "restores:clone_start": "operator",
    "restores:clone_step": "operator",
    "restores:clone_submit": "operator",
    "restores:cluster_restore": "admin",
    "restores:cluster_promote": "admin",
    "restores:cluster_power": "admin",
    "restores:operation_approve": "admin",
    "restores:operation_reject": "admin",
}
# Not the console's to guard: the login page (anonymous by design) and Django's admin
# (staff only, with its own permission checks: test_admin_is_staff_only).
EXEMPT = ("login", "admin:")
RANK = {"viewer": 1, "operator": 2, "admin": 3}


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    url: str


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{entry.namespace}:" if entry.namespace else ""
            yield from _walk(entry.url_patterns, prefix + namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield prefix + entry.name, entry


@pytest.fixture
def world(fake: FakePlatform) -> dict[str, Any]:
    """hippo in team-a with a backup, a draft cloning it, and an operation awaiting approval
    (requested by an admin who is none of the users below)."""
    fake.namespace = NS
    fake.add("hippo")
    hippo = ClusterFactory(namespace=NS, name="hippo")
    repo = RepositoryFactory(cluster=hippo)
    BackupFactory(repository=repo, label="20261124-090000F", databases=["hippo"])
    requester = user_with_role("requester", "admin")
    waiting = OperationFactory(cluster=hippo, kind="shutdown", status="awaiting_approval",
                               params={}, requested_by=requester)
    draft = CloneDraft.objects.create(source=hippo, repo_name="repo1")
    plan = DrillPlan.objects.create(name="weekly", platform="local", namespace=NS,
                                    cluster_name="hippo", schedule="0 3 * * 1")
    run = DrillRun.objects.create(plan=plan, cluster=hippo, slot_at=T0, outcome="failed",
                                  reason="a check failed")
    # A report of team-a prepared by the requester, for an admin of team-a to sign.
    signoff = ReportSignoff.objects.create(
        period_start=T0, period_end=T0 + dt.timedelta(days=1), platform="local", namespace=NS,
        summary={}, digest="0" * 64, prepared_by=requester)
    return {"hippo": hippo, "op": waiting, "draft": draft, "plan": plan, "run": run,
            "signoff": signoff}


def _kwargs(pattern: URLPattern, world: dict[str, Any]) -> dict[str, Any]:
    hippo = world["hippo"]
    samples = {"platform": hippo.platform, "namespace": hippo.namespace, "name": hippo.name,
               "operation_id": world["op"].pk, "draft_id": world["draft"].pk,
               "step": "source", "action": "shutdown", "plan_id": world["plan"].pk,
               "run_id": world["run"].pk, "signoff_id": world["signoff"].pk}
    names = list(pattern.pattern.regex.groupindex)
    missing = [n for n in names if n not in samples]
    assert not missing, f"{pattern.name}: add a sample value for {missing} to this test"
    return {n: samples[n] for n in names}


def routes(world: dict[str, Any]) -> list[Route]:
    found = []
    for name, pattern in _walk(get_resolver().url_patterns):
        if name.startswith(EXEMPT) and name not in ROLE_MATRIX:
            continue
        found.append(Route(name, reverse(name, kwargs=_kwargs(pattern, world))))
    return found


def state() -> tuple[Any, ...]:
    """What a refused request must leave as it was (its own audit entry aside)."""
    return (
        list(Operation.objects.order_by("pk").values_list("pk", "status", "version")),
        list(CloneDraft.objects.order_by("pk").values_list("pk", "version", "reached")),
        list(Cluster.objects.order_by("pk").values_list("pk", "role", "state")),
        Grant.objects.count(),
        list(ReportSignoff.objects.order_by("pk").values_list("pk", "signed_at")),
        AuditEntry.objects.exclude(action="access.denied").count(),
    )


def client_for(role: str | None, namespace: str = NS) -> Client:
    client = Client()
    if role is not None:
        client.force_login(user_with_role(f"{role}-{namespace}", role, platform="local",
                                          namespace=namespace))
    return client


def _post(client: Client, route: Route, world: dict[str, Any]) -> int:
    """A POST as a form of the page would send it, about hippo."""
    return client.post(route.url, {"confirm": "hippo", "reason": "x", "repo": "repo1",
                                   "backup_type": "full", "kind": "latest",
                                   "source": world["hippo"].pk, "platform": "local",
                                   "namespace": NS, "status": "open"}).status_code


def _mutating(world: dict[str, Any]) -> list[Route]:
    """The URLs that take a POST, asked by a logged-in user with no role at all: a GET-only
    view answers 405 before anything else, every other one refuses (so nothing changes)."""
    nobody = Client()
    nobody.force_login(user_with_role("nobody", "viewer", platform="elsewhere"))
    return [r for r in routes(world) if r.name != "logout"
            and nobody.post(r.url, {}).status_code != 405]


def test_every_mutating_url_declares_its_role(world: dict[str, Any]) -> None:
    mutating = _mutating(world)
    names = {r.name for r in mutating}
    undeclared = names - set(ROLE_MATRIX)
    assert not undeclared, f"mutating URLs without a role in ROLE_MATRIX: {sorted(undeclared)}"
    assert names == set(ROLE_MATRIX) - {"logout"}
    print("\n| URL | path | viewer | operator | admin |\n|---|---|---|---|---|")
    for route in routes(world):
        needed = ROLE_MATRIX.get(route.name, "viewer") or "viewer"
        cells = ["yes" if RANK[role] >= RANK[needed] else "403" for role in RANK]
        print(f"| {route.name} | {route.url} | {' | '.join(cells)} |")


def test_an_anonymous_user_is_sent_to_log_in_and_nothing_changes(world: dict[str, Any]) -> None:
    anonymous = Client()
    for route in routes(world):
        before = state()
        for answer in (anonymous.get(route.url), anonymous.post(route.url, {"confirm": "hippo"})):
            assert answer.status_code == 302, route
            assert answer["Location"].startswith("/login/"), route
        assert state() == before, route


@pytest.mark.parametrize("who", ["viewer in scope", "operator out of scope",
                                 "admin out of scope", "below the role"])
def test_mutating_urls_refuse_whoever_lacks_the_role_there(world: dict[str, Any],
                                                           who: str) -> None:
    for route in _mutating(world):
        needed = ROLE_MATRIX[route.name]
        assert needed is not None
        if who == "viewer in scope":
            client = client_for("viewer")
        elif who == "operator out of scope":
            client = client_for("operator", OTHER_NS)
        elif who == "admin out of scope":
            client = client_for("admin", OTHER_NS)
        else:
            below = [r for r, n in RANK.items() if n == RANK[needed] - 1]
            client = client_for(below[0]) if below else client_for("viewer")
        before = state()
        assert _post(client, route, world) == 403, (who, route)
        assert state() == before, (who, route)


def test_the_role_a_url_needs_is_let_through_in_scope(world: dict[str, Any]) -> None:
    """The positive control: every refusal above is a role check, not a broken URL."""
    for route in _mutating(world):
        needed = ROLE_MATRIX[route.name]
        assert needed is not None
        assert _post(client_for(needed), route, world) != 403, route


def test_pages_of_a_cluster_out_of_scope_are_refused(world: dict[str, Any]) -> None:
    outsider = client_for("admin", OTHER_NS)
    draft = str(world["draft"].pk)
    scoped = [r for r in routes(world)
              if "/clusters/" in r.url or "/operations/" in r.url or draft in r.url]
    assert len(scoped) >= 10
    for route in scoped:
        assert outsider.get(route.url).status_code in (403, 405), route
    inside = client_for("viewer")
    assert inside.get(reverse("restores:cluster", kwargs={
        "platform": "local", "namespace": NS, "name": "hippo"})).status_code == 200


def test_a_refusal_says_which_role_is_missing_and_is_audited(world: dict[str, Any]) -> None:
    viewer = client_for("viewer")
    r = viewer.post(reverse("restores:backup_create", kwargs={
        "platform": "local", "namespace": NS, "name": "hippo"}),
        {"repo": "repo1", "backup_type": "full"})
    assert r.status_code == 403
    page = r.content.decode()
    assert "You may not back up in local/team-a: that needs the operator role there, and you "\
           "have the viewer role." in page
    entry = AuditEntry.objects.get(action="access.denied")
    assert entry.actor_name == "viewer-team-a" and "/backup/" in entry.params["path"]


def test_admin_is_staff_only(world: dict[str, Any]) -> None:
    """Django's admin keeps its own gate: a console admin who is not staff is sent to its
    login, and nothing can be changed there."""
    client = client_for("admin")
    r = client.get("/admin/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
    r = client.post(f"/admin/restores/operation/{world['op'].pk}/change/", {"status": "failed"})
    assert r.status_code == 302
    assert Operation.objects.get(pk=world["op"].pk).status == "awaiting_approval"
