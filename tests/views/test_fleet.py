from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Repository
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
