"""The console's pages and polls make as many SQL queries for a big fleet as for a small one.

The requests are the ones `python -m bench` times (bench.pages.targets): the Fleet page and its
htmx refresh, the page of the cluster with the most backups and its poll (204 unchanged; 200
when its state or operations changed, when its backups changed, when both did), the page of the
active operation with the most events and its progress poll (204 unchanged, 200 changed), and
the drill report.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from bench import pages
from restores.models import Cluster, Operation, OperationEvent
from tests.factories import BackupFactory, ClusterFactory, OperationFactory, RepositoryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("bench_urls")]

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def add_fleet(clusters: int, *, repos: int, backups: int, events: int, finished_ops: int) -> None:
    """Clusters with `repos` repos of `backups` backups each, `finished_ops` finished
    operations and one running backup with `events` events."""
    for i in range(clusters):
        cluster = ClusterFactory(platform="kubernetes" if i % 2 else "local",
                                 namespace=f"team-{i % 3}" if i % 2 else "local")
        for r in range(repos):
            repo = RepositoryFactory(cluster=cluster, name=f"repo{r + 1}")
            BackupFactory.create_batch(backups, repository=repo)
        OperationFactory.create_batch(finished_ops, cluster=cluster, status="succeeded")
        OperationFactory(cluster=cluster, kind="drill", exclusive=False,
                         status="succeeded" if i % 2 else "failed",
                         params={"repo": "repo1", "point": {"kind": "latest", "time": ""}},
                         result={"rto_seconds": 30.5, "rpo_seconds": 12.0,
                                 "checks": [{"check": "accepts writes", "ok": True}]})
        op = OperationFactory(cluster=cluster, status="running", version=events)
        OperationEvent.objects.bulk_create(
            OperationEvent(operation=op, at=T0 + dt.timedelta(seconds=k), step="running",
                           message=f"event {k}", command="pgbackrest backup" if k == 1 else "")
            for k in range(events)
        )


def measure(client: Client) -> tuple[dict[str, int], list[pages.Target]]:
    targets = pages.targets()
    return pages.count_queries(client, targets), targets


def test_pages_and_polls_make_the_same_queries_for_a_bigger_fleet(client: Client) -> None:
    add_fleet(2, repos=1, backups=2, events=2, finished_ops=1)
    small, small_targets = measure(client)
    small_cluster, small_op = pages.busiest_cluster(), pages.busiest_active_operation()

    add_fleet(10, repos=3, backups=6, events=9, finished_ops=4)
    large, large_targets = measure(client)
    big_cluster, big_op = pages.busiest_cluster(), pages.busiest_active_operation()

    # The second measurement really is of bigger pages.
    assert Cluster.objects.count() == 12 and Operation.objects.count() == 66
    assert (big_cluster.n_backups, big_cluster.n_repos) == (18, 3) > (
        small_cluster.n_backups, small_cluster.n_repos)
    assert big_op.n_events == 9 > small_op.n_events
    assert [t.path for t in large_targets] != [t.path for t in small_targets]
    fleet = next(t for t in large_targets if t.key == "fleet")
    assert fleet.get(client).content.decode().count("data-cluster=") == 12

    assert set(large) == {
        "baseline", "fleet", "fleet_partial", "cluster", "cluster_poll", "cluster_poll_status",
        "cluster_poll_backups", "cluster_poll_changed", "operation", "operation_poll",
        "operation_poll_changed", "drills",
    }
    grown = {k: f"{small[k]} -> {large[k]}" for k in large if large[k] != small[k]}
    assert not grown, f"query count grows with the fleet: {grown}"
    # Every request pays for the session and the user, as the baseline does; pages add theirs.
    assert large["baseline"] == 2
    assert all(n > large["baseline"] for k, n in large.items() if k != "baseline")
    # A poll reads only what the region it re-renders needs.
    assert large["cluster_poll"] < large["cluster_poll_status"] < large["cluster_poll_backups"]
    assert large["cluster_poll_changed"] == (large["cluster_poll_status"]
                                             + large["cluster_poll_backups"]
                                             - large["cluster_poll"])


def test_the_polls_answer_as_the_bench_expects(client: Client) -> None:
    add_fleet(2, repos=2, backups=3, events=3, finished_ops=1)
    for target in pages.targets():
        response = target.get(client)  # raises BenchError on another status
        assert response.status_code == target.status
        if target.status == 204:
            assert response.content == b""
    # Each cluster poll swaps in the regions its row says, and only those.
    html = {t.key: t.get(client).content.decode() for t in pages.targets()
            if t.key.startswith("cluster_poll_")}
    status, backups = 'id="cluster-operations" hx-swap-oob', 'id="repos" hx-swap-oob'
    assert status in html["cluster_poll_status"] and backups not in html["cluster_poll_status"]
    assert backups in html["cluster_poll_backups"] and status not in html["cluster_poll_backups"]
    assert status in html["cluster_poll_changed"] and backups in html["cluster_poll_changed"]
