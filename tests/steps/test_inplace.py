"""The in-place restore's steps: the window and the database names checked again before the
cluster is touched, the safety backup first, the platform told what was checked."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from restores.models import Cluster
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, standbys
from restores.steps import inplace as inplace_steps
from tests.actions import request_in_place_restore
from tests.factories import HIPPO_FULL, user_with_role
from tests.fakes import T0, FakePlatform, make_backup
from tests.worker import run_step

pytestmark = pytest.mark.django_db


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


def test_an_in_place_restore_first_backs_up_the_current_state(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = request_in_place_restore(hippo_row)
    assert op.params["safety_backup"] is True
    op = run_step(op)
    trigger = op.refs["trigger"]
    assert (op.status, op.step) == ("running", "safety_backup")
    assert fake.started == [trigger + inplace_steps.SAFETY_SUFFIX]
    assert getattr(fake, "in_place", {}) == {}  # nothing touched while it backs up
    assert run_step(op).step == "safety_backup"
    fake.finish(trigger + inplace_steps.SAFETY_SUFFIX)
    op = run_step(op)
    label = op.refs["safety_backup"]
    assert label and fake.in_place == {trigger: "running"}
    assert inplace_steps.SAFETY_BACKUP_DONE.format(label=label, repo="repo1") in list(
        op.events.values_list("message", flat=True))
    fake.in_place[trigger] = "succeeded"
    op = run_step(op)
    assert op.status == "succeeded" and op.result["safety_backup"] == label
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(op.get_absolute_url()).content.decode()
    assert 'id="safety-backup"' in page and label in page


def test_a_failed_backup_of_the_current_state_touches_nothing(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = run_step(request_in_place_restore(hippo_row))
    fake.finish(op.refs["trigger"] + inplace_steps.SAFETY_SUFFIX, ok=False,
                message="[047] unable to create path")
    op = run_step(op)
    assert op.status == "failed"
    assert op.error_reason == inplace_steps.SAFETY_BACKUP_FAILED.format(
        reason="[047] unable to create path")
    assert op.error_fix == inplace_steps.SAFETY_BACKUP_FIX
    assert getattr(fake, "in_place", {}) == {}


def test_the_first_step_rechecks_the_names_against_the_repo(
    fake: FakePlatform, hippo_databases: Cluster
) -> None:
    """The stored list said `reporting`; the repo, read again, does not have it."""
    op = request_in_place_restore(hippo_databases, db_include=("reporting",))
    fake.databases = {HIPPO_FULL: ["hippo"]}
    op = run_step(op)
    assert op.status == "failed" and op.error_fix == inplace_steps.IN_PLACE_DB_FIX
    assert op.error_reason == f"reporting is not in backup set {HIPPO_FULL}, which holds: hippo."
    assert fake.started == [] and getattr(fake, "in_place", {}) == {}


def test_the_platform_is_told_which_set_the_names_were_checked_against(
    fake: FakePlatform, hippo_databases: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    original = FakePlatform.restore_in_place_advance
    monkeypatch.setattr(FakePlatform, "restore_in_place_advance",
                        lambda self, req: (seen.append(req), original(self, req))[1])
    run_step(request_in_place_restore(hippo_databases, db_include=("reporting",),
                                      safety_backup=False))
    assert [(r.db_include, r.db_set) for r in seen] == [(("reporting",), HIPPO_FULL)]
