"""The backup's steps: started once however often the step runs, listed once it succeeds, failed
with the platform's reason."""

from __future__ import annotations

import pytest

from restores.models import Backup, Cluster, Operation
from restores.steps import backups as backups_steps
from tests.actions import request_backup
from tests.fakes import FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db


def _steps(op: Operation) -> list[str]:
    return list(op.events.order_by("at", "id").values_list("step", flat=True))


def test_it_starts_the_backup_once_however_often_the_step_runs(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = request_backup(hippo_row)
    run_step(op)
    run_step(op)  # a redelivered message
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING
    assert fake.started == [str(op.id)]
    assert _steps(op) == ["requested", "backing_up", "backing_up"]  # started, then observed
    assert op.events.filter(command__contains="pgbackrest").count() == 1


def test_it_succeeds_once_and_lists_the_new_backup(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    run_step(op)
    fake.finish(str(op.id))
    run_step(op)
    events = op.events.count()
    version = op.version
    run_step(op)  # run the finished step again: nothing changes
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert op.events.count() == events
    assert op.version == version
    label = op.result["label"]
    assert Backup.objects.filter(repository__cluster=hippo_row, label=label).exists()
    assert op.result["duration_s"] == 20.0
    assert op.finished_at is not None and op.next_check_at is None


def test_it_fails_with_the_platform_reason(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    run_step(op)
    fake.finish(str(op.id), ok=False, message="[050] unable to acquire lock")
    run_step(op)
    run_step(op)
    assert op.status == Operation.Status.FAILED
    assert op.error_reason == "[050] unable to acquire lock"
    assert op.error_fix == backups_steps.BACKUP_LOCKED_FIX  # the reason names the lock
    assert _steps(op).count("failed") == 1
