"""The reconcile loop: retries and their pace, giving up, permanent errors, a step another worker
holds, duplicate deliveries, the sweep, an unknown kind."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from restores.models import Cluster, Operation
from restores.platforms.base import PermanentError, TransientError
from restores.steps import loop
from restores.tasks import sweep_operations
from tests.actions import request_backup
from tests.fakes import FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db


def test_it_retries_transient_errors_then_carries_on(fake: FakePlatform,
                                                     hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    fake.fail_next = [TransientError("connection refused")]
    delay = loop.advance(str(op.id))
    op.refresh_from_db()
    assert op.status == Operation.Status.PENDING
    assert op.attempts == 1
    assert delay is not None and delay >= dt.timedelta(seconds=1)
    assert op.events.filter(level="warning", message="Retrying: connection refused").exists()
    run_step(op)
    assert op.status == Operation.Status.RUNNING
    assert op.attempts == 0


def test_it_looks_again_at_the_platforms_pace_but_backs_off_from_errors(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    fake.poll_interval = dt.timedelta(milliseconds=250)
    op = request_backup(hippo_row)
    delay = loop.advance(str(op.id))
    assert delay is not None and delay <= dt.timedelta(milliseconds=250)
    fake.fail_next = [TransientError("connection refused")]
    Operation.objects.filter(pk=op.pk).update(next_check_at=timezone.now())
    delay = loop.advance(str(op.id))
    assert delay is not None and delay > dt.timedelta(seconds=1)


def test_it_gives_up_after_too_many_transient_errors(fake: FakePlatform,
                                                     hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    fake.fail_next = [TransientError("timeout")] * loop.MAX_TRANSIENT_FAILURES
    for _ in range(loop.MAX_TRANSIENT_FAILURES):
        run_step(op)
    assert op.status == Operation.Status.FAILED
    assert op.error_reason == loop.TRANSIENT_GAVE_UP.format(
        count=loop.MAX_TRANSIENT_FAILURES, error="timeout"
    )


def test_it_fails_at_once_on_a_permanent_error(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    fake.fail_next = [PermanentError("repo9 is not a pgBackRest repo name")]
    run_step(op)
    assert op.status == Operation.Status.FAILED
    assert op.error_reason == "repo9 is not a pgBackRest repo name"
    assert fake.started == []


def test_it_skips_a_step_another_worker_holds(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_backup(hippo_row)
    Operation.objects.filter(pk=op.pk).update(
        lease_until=timezone.now() + dt.timedelta(minutes=1)
    )
    assert loop.advance(str(op.id)) is None
    assert fake.started == []


def test_it_drops_a_duplicate_delivery_that_arrives_early(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = request_backup(hippo_row)
    loop.advance(str(op.id))
    Operation.objects.filter(pk=op.pk).update(
        next_check_at=timezone.now() + dt.timedelta(minutes=5)
    )
    fake.finish(str(op.id))
    assert loop.advance(str(op.id)) is None
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING


def test_the_sweep_resumes_only_overdue_operations(
    fake: FakePlatform, hippo_row: Cluster, dispatched: list[str]
) -> None:
    other = fake.add("other")
    assert other
    from restores import inventory

    inventory.platform_sync(platform_name="local")
    lost = request_backup(hippo_row)
    fresh = request_backup(Cluster.objects.get(name="other"))
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    Operation.objects.filter(pk=lost.pk).update(created_at=long_ago, next_check_at=long_ago)
    dispatched.clear()
    assert sweep_operations() == 1
    assert dispatched == [str(lost.id)]
    assert str(fresh.id) not in dispatched


def test_an_unknown_kind_fails_with_a_clear_reason(hippo_row: Cluster) -> None:
    op = Operation.objects.create(cluster=hippo_row, kind="vacuum")
    loop.advance(str(op.id))
    op.refresh_from_db()
    assert op.status == Operation.Status.FAILED
    assert op.error_reason == "The console cannot run vacuum operations yet."
