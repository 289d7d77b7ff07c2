from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from restores.models import Backup, Cluster, DrillPlan, Grant, Operation, Repository

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
# hippo's full backup on the fake platform (tests/conftest.py: hippo_row)
HIPPO_FULL = "20261124-090000F"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"dba{n}")
    password = factory.django.Password("correct horse battery")


class GrantFactory(factory.django.DjangoModelFactory):
    """A role on every cluster unless a platform / namespace is given."""

    class Meta:
        model = Grant
        django_get_or_create = ("user", "role", "platform", "namespace")

    user = factory.SubFactory(UserFactory)
    role = Grant.Role.ADMIN
    platform = ""
    namespace = ""


def user_with_role(username: str, role: str = Grant.Role.ADMIN, *, platform: str = "",
                   namespace: str = "", password: str | None = None):  # type: ignore[no-untyped-def]
    """A user holding `role` on platform/namespace ("" = every one)."""
    user = UserFactory(username=username, **({"password": password} if password else {}))
    GrantFactory(user=user, role=role, platform=platform, namespace=namespace)
    return user


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    platform = "local"
    namespace = "local"
    name = factory.Sequence(lambda n: f"cluster{n}")
    role = Cluster.Role.PRIMARY
    pg_version = "15.20"
    state = "ready"


class RepositoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repository

    cluster = factory.SubFactory(ClusterFactory)
    name = "repo1"
    earliest_recovery = T0
    latest_recovery = T0 + dt.timedelta(hours=1)


class BackupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Backup

    repository = factory.SubFactory(RepositoryFactory)
    label = factory.Sequence(lambda n: f"20261124-{n:06d}F")
    type = "full"
    started_at = T0 - dt.timedelta(seconds=20)
    stopped_at = T0
    database_size = 30_000_000
    delta_size = 30_000_000
    repo_size = 4_000_000
    repo_delta = 4_000_000
    wal_start = "000000010000000000000002"
    wal_stop = "000000010000000000000003"


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    cluster = factory.SubFactory(ClusterFactory)
    kind = Operation.Kind.BACKUP
    params = factory.LazyFunction(lambda: {"repo": "repo1", "type": "full"})
    refs = factory.LazyAttribute(lambda o: {})


class DrillPlanFactory(factory.django.DjangoModelFactory):
    """A plan drilling local/local/hippo every hour, latest point, no checks of its own; its
    cursor an hour before T0 (so the slot at T0 is due)."""

    class Meta:
        model = DrillPlan

    name = factory.Sequence(lambda n: f"plan {n}")
    platform = "local"
    scope = DrillPlan.Scope.CLUSTER
    namespace = "local"
    cluster_name = "hippo"
    schedule = "0 * * * *"
    time_zone = "UTC"
    created_at = T0 - dt.timedelta(hours=2)
    scheduled_through = T0 - dt.timedelta(hours=1)
