"""Services and reconcile steps of in-place restore, shutdown / start, standby, promotion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from restores import inventory
from restores.models import Backup, Cluster, Operation
from restores.platforms.base import TransientError
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion, standbys
from restores.services.errors import ServiceError
from restores.steps import inplace as inplace_steps
from restores.steps import loop
from tests.fakes import T0, FakePlatform, make_backup

pytestmark = pytest.mark.django_db


@pytest.fixture
def hippo(fake: FakePlatform) -> Cluster:
    fake.add("hippo", backups=[make_backup("20261124-090000F", stop=T0)])
    inventory.platform_sync(platform_name="local")
    return Cluster.objects.get(name="hippo")


def _run_until_done(op: Operation, limit: int = 10) -> Operation:
    for _ in range(limit):
        Operation.objects.filter(pk=op.pk, status__in=Operation.ACTIVE).update(
            next_check_at=timezone.now())
        loop.advance(str(op.id))
        op.refresh_from_db()
        if op.is_terminal:
            break
    return op


def test_shutdown_then_start(fake: FakePlatform, hippo: Cluster) -> None:
    op = _run_until_done(power.power_request(cluster=hippo, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "succeeded" and op.kind == "shutdown"
    hippo.refresh_from_db()
    assert hippo.role == "shutdown"
    with pytest.raises(ServiceError) as err:
        power.power_request(cluster=hippo, shutdown=True, user=None, confirm="hippo")
    assert err.value.message == power.ALREADY_SHUT_DOWN.format(cluster="hippo")
    op = _run_until_done(power.power_request(cluster=hippo, shutdown=False, user=None,
                                                   confirm="hippo"))
    hippo.refresh_from_db()
    assert op.status == "succeeded" and hippo.role == "primary"
    assert list(op.events.values_list("step", flat=True)) == ["requested", "running", "done"]


def test_in_place_restore_needs_a_typed_confirmation_and_a_reachable_point(
    fake: FakePlatform, hippo: Cluster
) -> None:
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=point,
                                             user=None, confirm="hipo")
    assert err.value.field == "confirm"
    late = RestoreTarget(kind="time", time=T0 + dt.timedelta(hours=5))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=late,
                                             user=None, confirm="hippo")
    assert err.value.message.startswith("2026-11-24 14:00:00 UTC is after the last archived WAL")
    Backup.objects.filter(repository__cluster=hippo).update(databases=["app", "reporting"])
    fake.databases = {"20261124-090000F": ["app", "reporting"]}
    op = inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", db_include=("app",),
                                              safety_backup=False)
    assert op.kind == "restore_database"
    op = _run_until_done(op, limit=3)
    assert op.status == "running"
    fake.in_place[op.refs["trigger"]] = "succeeded"
    assert _run_until_done(op).status == "succeeded"


def test_an_in_place_restore_rechecks_the_window_before_touching_the_cluster(
    fake: FakePlatform, hippo: Cluster
) -> None:
    """The point was inside the window the last sync saw; by the first step retention has
    expired the only backup before it. Nothing is restored: the operation fails with why."""
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=point,
                                              user=None, confirm="hippo")
    fake.clusters_["hippo"].backups = [
        make_backup("20261124-093000F", stop=T0 + dt.timedelta(minutes=30))]
    op = _run_until_done(op, limit=1)
    assert op.status == "failed"
    assert op.error_reason.startswith("2026-11-24 09:10:00 UTC is before")
    assert op.error_fix == inplace_steps.IN_PLACE_WINDOW_MOVED_FIX
    assert getattr(fake, "in_place", {}) == {}  # the platform was never asked to restore
    # and the stored inventory is the one just read
    assert list(hippo.repositories.get(name="repo1").backups.values_list("label", flat=True)) \
        == ["20261124-093000F"]


def test_an_in_place_restore_whose_repos_cannot_be_read_checks_the_stored_window(
    fake: FakePlatform, hippo: Cluster
) -> None:
    """A shut-down PGO cluster has no pod to ask: the window of the last sync is the check."""
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", safety_backup=False)
    fake.repos_fail.append(TransientError("no running leader pod to ask"))
    op = _run_until_done(op, limit=1)
    assert op.status == "running"
    assert fake.in_place == {op.refs["trigger"]: "running"}
    assert fake.repos_fail == []


def test_the_step_that_starts_a_restore_or_a_standby_already_asks_the_platform(
    fake: FakePlatform, hippo: Cluster
) -> None:
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", safety_backup=False)
    op = _run_until_done(op, limit=1)
    assert fake.in_place == {op.refs["trigger"]: "running"}
    assert list(op.events.values_list("step", "message")) == [
        ("requested", op.events.first().message),  # type: ignore[union-attr]
        ("running", "Restoring hippo in place."),
        ("running", "restore running"),  # what the platform reported
    ]
    op = standbys.standby_request(source=hippo, name="hippo-standby", namespace="local",
                                     user=None)
    _run_until_done(op, limit=1)
    assert fake.clusters_["hippo-standby"].role == "standby"


def test_standby_then_promotion_with_the_split_brain_guard(
    fake: FakePlatform, hippo: Cluster
) -> None:
    op = standbys.standby_request(source=hippo, name="hippo-standby", namespace="local",
                                     user=None)
    op = _run_until_done(op)
    standby = Cluster.objects.get(name="hippo-standby")
    assert op.status == "succeeded" and standby.role == "standby"
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="hippo-standby", user=None)
    assert err.value.message == promotion.SPLIT_BRAIN.format(primary="hippo",
                                                               cluster="hippo-standby")
    _run_until_done(power.power_request(cluster=hippo, shutdown=True, user=None,
                                              confirm="hippo"))
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="nope", user=None)
    assert err.value.field == "confirm"
    op = _run_until_done(promotion.promote_request(cluster=standby, confirm="hippo-standby",
                                                     user=None))
    standby.refresh_from_db()
    assert op.status == "succeeded" and standby.role == "primary"


def test_a_platform_that_cannot_do_it_fails_the_operation_clearly(
    fake: FakePlatform, hippo: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restores.platforms.base import Platform

    monkeypatch.setattr(FakePlatform, "power_advance", Platform.power_advance)
    op = _run_until_done(power.power_request(cluster=hippo, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "failed"
    assert op.error_reason == "The local platform cannot shut down or start clusters."
