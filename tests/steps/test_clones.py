"""The clone's steps: restored once however often a step runs, the new cluster in the inventory,
the window checked again, failures said."""

from __future__ import annotations

import datetime as dt

import pytest

from restores import inventory, rules
from restores.models import Backup, CloneDraft, Cluster, Operation
from restores.platforms.base import TransientError
from restores.services import clones
from restores.steps import clones as clones_steps
from tests.fakes import T0, FakePlatform, make_backup
from tests.worker import run_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def op(fake: FakePlatform) -> Operation:
    fake.add("hippo", backups=[make_backup("20261124-090000F", stop=T0)])
    inventory.platform_sync(platform_name="local")
    hippo_row = Cluster.objects.get(name="hippo")
    Backup.objects.update(databases=["hippo"])
    draft = CloneDraft.objects.create(source=hippo_row, repo_name="repo1", reached="review")
    clones.draft_save_point(user=None,
        draft=draft, point=clones.RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=30)),
        display={"date": "2026-11-24", "clock": "09:30:00", "zone": "UTC"},
    )
    clones.draft_save_target(user=None, draft=draft,
                             answers=clones.TargetAnswers("elephant", "local"))
    return clones.draft_submit(draft=draft, version=draft.version, user=None)


def test_it_restores_once_however_often_a_step_runs(fake: FakePlatform, op: Operation) -> None:
    run_step(op)
    assert op.status == "running" and op.step == "restoring"
    (started,) = op.events.exclude(command="")
    assert started.step == "restoring" and "pgbackrest" in started.command
    for _ in range(3):
        run_step(op)
    assert fake.clone_launches == [op.refs["trigger"]]
    assert op.events.filter(message="restoring").count() == 1


def test_the_step_that_starts_the_clone_launches_the_restore(
    fake: FakePlatform, op: Operation
) -> None:
    """Recording the start and asking the platform happen in one step: leaving the launch
    to the next would add a poll to every restore."""
    run_step(op)
    assert fake.clone_launches == [op.refs["trigger"]]
    events = list(op.events.order_by("at", "id").values_list("step", "message"))
    assert events[1:] == [
        ("restoring", "Restore hippo's repo1 into elephant."),
        ("restoring", "restoring"),  # what the platform reported
    ]


def test_it_succeeds_once_with_the_new_cluster_in_the_inventory(
    fake: FakePlatform, op: Operation
) -> None:
    run_step(op)
    run_step(op)
    fake.finish_clone(op.refs["trigger"], "elephant")
    run_step(op)
    events = op.events.count()
    run_step(op)
    assert op.status == "succeeded" and op.events.count() == events
    assert op.result == {"restore_seconds": "3.1", "restored_bytes": "52000000"}
    elephant = Cluster.objects.get(name="elephant")
    assert (elephant.role, elephant.state) == ("primary", "ready")
    assert Backup.objects.filter(repository__cluster=elephant).count() == 1


def test_a_failed_restore_says_why(fake: FakePlatform, op: Operation) -> None:
    run_step(op)
    run_step(op)
    fake.finish_clone(op.refs["trigger"], "elephant", ok=False,
                      message="recovery ended before the target was reached")
    run_step(op)
    assert op.status == "failed"
    assert op.error_reason == "recovery ended before the target was reached"
    assert op.error_fix == clones_steps.CLONE_FAILED_FIX


def test_it_rechecks_the_window_before_restoring(fake: FakePlatform, op: Operation) -> None:
    """Retention expired the only backup between review and the first step."""
    fake.clusters_["hippo"].backups.clear()
    run_step(op)
    assert op.status == "failed"
    assert op.error_reason == rules.NO_WINDOW.format(repo="repo1")
    assert not getattr(fake, "clone_launches", [])


def test_a_transient_platform_error_is_retried(fake: FakePlatform, op: Operation) -> None:
    run_step(op)
    fake.fail_next = [TransientError("connection refused")]
    run_step(op)
    assert op.status == "running" and op.attempts == 1
    run_step(op)
    assert op.attempts == 0 and fake.clone_launches == [op.refs["trigger"]]
