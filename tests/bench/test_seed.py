"""The bench's fleet seeder writes a consistent fleet the pages benchmark can measure."""

from __future__ import annotations

import pytest
from django.db.models import Count
from django.test import Client

from bench import fleet, pages
from restores.models import Backup, Cluster, Operation, OperationEvent, Repository

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("bench_urls")]


def test_it_seeds_the_scale_asked_for_and_respects_the_models_rules(client: Client) -> None:
    seeded = fleet.seed(fleet.Scale(clusters=20, backups=600, operations=80))
    assert seeded.clusters == Cluster.objects.count() == 20
    assert seeded.backups == Backup.objects.count() == 600
    assert seeded.operations == Operation.objects.count() == 80
    assert seeded.repositories == Repository.objects.count() >= 20
    assert seeded.events == OperationEvent.objects.count()
    assert 4 * 80 <= seeded.events <= 6 * 80  # about five each
    assert {c.platform for c in Cluster.objects.all()} == {"local", "kubernetes"}
    active = Operation.objects.filter(status__in=Operation.ACTIVE, exclusive=True)
    assert seeded.active_operations == active.count() == 1
    assert not active.values("cluster").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not Cluster.objects.filter(repositories=None).exists()
    for op in Operation.objects.annotate(n=Count("events"))[:20]:
        assert op.version == op.n

    # A second seed adds to the first (fresh ids, names and sequences) without a clash.
    again = fleet.seed(fleet.Scale(clusters=5, backups=50, operations=10))
    assert Cluster.objects.count() == 25 and again.backups == 50
    Cluster.objects.create(platform="local", namespace="local", name="after-seed")

    # The pages benchmark can measure it.
    counts = pages.count_queries(client, pages.targets())
    assert counts["fleet"] == counts["fleet_partial"]


def test_the_same_scale_seeds_the_same_fleet() -> None:
    scale = fleet.Scale(clusters=4, backups=40, operations=8)
    fleet.seed(scale)
    first = list(Backup.objects.order_by("id").values_list("label", "stopped_at"))
    Operation.objects.all().delete()
    Cluster.objects.all().delete()
    fleet.seed(scale)
    assert list(Backup.objects.order_by("id").values_list("label", "stopped_at")) == first
