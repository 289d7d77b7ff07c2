"""Services and reconcile steps of in-place restore, shutdown / start, standby, promotion."""

from __future__ import annotations

import datetime as dt

import pytest

from restores.models import Backup, Cluster
from restores.platforms.base import TransientError
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion, standbys
from restores.services.errors import ServiceError
from restores.steps import inplace as inplace_steps
from tests.fakes import T0, FakePlatform, make_backup
from tests.worker import run_step, run_until_done

pytestmark = pytest.mark.django_db


def test_shutdown_then_start(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "succeeded" and op.kind == "shutdown"
    hippo_row.refresh_from_db()
    assert hippo_row.role == "shutdown"
    with pytest.raises(ServiceError) as err:
        power.power_request(cluster=hippo_row, shutdown=True, user=None, confirm="hippo")
    assert err.value.message == power.ALREADY_SHUT_DOWN.format(cluster="hippo")
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=False, user=None,
                                                   confirm="hippo"))
    hippo_row.refresh_from_db()
    assert op.status == "succeeded" and hippo_row.role == "primary"
    assert list(op.events.values_list("step", flat=True)) == ["requested", "running", "done"]


def test_in_place_restore_needs_a_typed_confirmation_and_a_reachable_point(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                             user=None, confirm="hipo")
    assert err.value.field == "confirm"
    late = RestoreTarget(kind="time", time=T0 + dt.timedelta(hours=5))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=late,
                                             user=None, confirm="hippo")
    assert err.value.message.startswith("2026-11-24 14:00:00 UTC is after the last archived WAL")
    Backup.objects.filter(repository__cluster=hippo_row).update(databases=["app", "reporting"])
    fake.databases = {"20261124-090000F": ["app", "reporting"]}
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", db_include=("app",),
                                              safety_backup=False)
    assert op.kind == "restore_database"
    op = run_step(op, times=3)
    assert op.status == "running"
    fake.in_place[op.refs["trigger"]] = "succeeded"
    assert run_until_done(op).status == "succeeded"


def test_an_in_place_restore_rechecks_the_window_before_touching_the_cluster(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    """The point was inside the window the last sync saw; by the first step retention has
    expired the only backup before it. Nothing is restored: the operation fails with why."""
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo")
    fake.clusters_["hippo"].backups = [
        make_backup("20261124-093000F", stop=T0 + dt.timedelta(minutes=30))]
    op = run_step(op)
    assert op.status == "failed"
    assert op.error_reason.startswith("2026-11-24 09:10:00 UTC is before")
    assert op.error_fix == inplace_steps.IN_PLACE_WINDOW_MOVED_FIX
    assert getattr(fake, "in_place", {}) == {}  # the platform was never asked to restore
    # and the stored inventory is the one just read
    assert list(hippo_row.repositories.get(name="repo1").backups.values_list("label", flat=True)) \
        == ["20261124-093000F"]


def test_an_in_place_restore_whose_repos_cannot_be_read_checks_the_stored_window(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    """A shut-down PGO cluster has no pod to ask: the window of the last sync is the check."""
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", safety_backup=False)
    fake.repos_fail.append(TransientError("no running leader pod to ask"))
    op = run_step(op)
    assert op.status == "running"
    assert fake.in_place == {op.refs["trigger"]: "running"}
    assert fake.repos_fail == []


def test_the_step_that_starts_a_restore_or_a_standby_already_asks_the_platform(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", safety_backup=False)
    op = run_step(op)
    assert fake.in_place == {op.refs["trigger"]: "running"}
    assert list(op.events.values_list("step", "message")) == [
        ("requested", op.events.first().message),  # type: ignore[union-attr]
        ("running", "Restoring hippo in place."),
        ("running", "restore running"),  # what the platform reported
    ]
    op = standbys.standby_request(source=hippo_row, name="hippo-standby", namespace="local",
                                     user=None)
    run_step(op)
    assert fake.clusters_["hippo-standby"].role == "standby"


def test_standby_then_promotion_with_the_split_brain_guard(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = standbys.standby_request(source=hippo_row, name="hippo-standby", namespace="local",
                                     user=None)
    op = run_until_done(op)
    standby = Cluster.objects.get(name="hippo-standby")
    assert op.status == "succeeded" and standby.role == "standby"
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="hippo-standby", user=None)
    assert err.value.message == promotion.SPLIT_BRAIN.format(primary="hippo",
                                                               cluster="hippo-standby")
    run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                              confirm="hippo"))
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="nope", user=None)
    assert err.value.field == "confirm"
    op = run_until_done(promotion.promote_request(cluster=standby, confirm="hippo-standby",
                                                     user=None))
    standby.refresh_from_db()
    assert op.status == "succeeded" and standby.role == "primary"


def test_a_platform_that_cannot_do_it_fails_the_operation_clearly(
    fake: FakePlatform, hippo_row: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restores.platforms.base import Platform

    monkeypatch.setattr(FakePlatform, "power_advance", Platform.power_advance)
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "failed"
    assert op.error_reason == "The local platform cannot shut down or start clusters."
