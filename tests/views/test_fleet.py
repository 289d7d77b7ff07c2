from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Repository
from restores.selectors.fleet import FLEET_PAGE_SIZE
from tests.factories import BackupFactory, ClusterFactory, OperationFactory, RepositoryFactory

pytestmark = pytest.mark.django_db


def test_it_requires_login() -> None:
    r = Client().get("/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


def test_it_lists_clusters_with_their_window_last_backup_and_operation(
    client: Client, repo: Repository
) -> None:
    op = OperationFactory(cluster=repo.cluster)
    ClusterFactory(name="rhino", role="shutdown")
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "<title>Fleet · DR Console</title>" in html
    assert 'data-cluster="hippo"' in html and 'data-cluster="rhino"' in html
    assert "2026-11-24 09:00:00 UTC → 2026-11-24 10:00:00 UTC" in html
    assert "shut down" in html
    assert op.get_absolute_url() in html


def test_it_answers_htmx_with_the_table_only(client: Client, repo: Repository, hx) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", **hx)
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="fleet"')
    assert "<html" not in html
    assert r["Vary"] == "HX-Request, Cookie" or "HX-Request" in r["Vary"]


def test_its_query_count_does_not_grow_with_the_fleet(
    client: Client, django_assert_max_num_queries  # type: ignore[no-untyped-def]
) -> None:
    def add(n: int) -> None:
        for _ in range(n):
            repo = RepositoryFactory()
            BackupFactory.create_batch(3, repository=repo)
            OperationFactory(cluster=repo.cluster)

    add(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get("/")
    add(20)
    with django_assert_max_num_queries(len(small)):
        r = client.get("/")
    assert r.content.decode().count("data-cluster=") == 22


def test_it_pages_and_filters_a_large_fleet(client: Client, hx) -> None:  # type: ignore[no-untyped-def]

    for n in range(FLEET_PAGE_SIZE + 5):
        ClusterFactory(name=f"pg-{n:04d}", namespace="team-a" if n % 2 else "team-b")
    first = client.get("/").content.decode()
    assert first.count("data-cluster=") == FLEET_PAGE_SIZE
    assert "105 clusters · page 1 of 2" in first
    second = client.get("/?page=2").content.decode()
    assert second.count("data-cluster=") == 5
    assert client.get("/?page=999").status_code == 200  # clamped to the last page
    assert client.get("/?page=-3&q=" + "x" * 500).status_code == 200
    filtered = client.get("/?q=team-a").content.decode()
    assert "52 clusters" in filtered and 'data-cluster="pg-0001"' in filtered
    assert 'data-cluster="pg-0000"' not in filtered
    busy = ClusterFactory(name="busy-one")
    OperationFactory(cluster=busy)
    only_busy = client.get("/?busy=1").content.decode()
    assert only_busy.count("data-cluster=") == 1 and 'data-cluster="busy-one"' in only_busy
    assert "No cluster matches this filter." in client.get("/?q=nothing-like-this").content.decode()


def test_its_refresh_answers_204_until_something_changes(client: Client, repo: Repository,
                                                          hx) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/", **hx).content.decode()
    fingerprint = html.split("v=", 1)[1].split('"', 1)[0]
    assert client.get(f"/?page=1&v={fingerprint}", **hx).status_code == 204
    OperationFactory(cluster=repo.cluster)
    changed = client.get(f"/?page=1&v={fingerprint}", **hx)
    assert changed.status_code == 200 and "backup · pending" in changed.content.decode()
