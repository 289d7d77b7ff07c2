"""The first step of a clone on the local platform launches pgBackRest: between the click and
the restore there is no poll to wait for.

Real PostgreSQL and pgBackRest (conftest.py), the console's database; no worker and no
browser: the test runs the step itself, as the worker's task would.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from restores.models import Cluster, Operation
from restores.platforms.base import ClusterRef
from restores.services import dispatch
from restores.steps import loop

from .conftest import NAMESPACE, E2EFleet, submit_clone

pytestmark = pytest.mark.e2e

TARGET = "narwhal"


def test_the_first_step_of_a_local_clone_launches_the_restore(
    hippo_row: Cluster, e2e_fleet: E2EFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "send", lambda task, *args: None)  # no worker: we run it
    op = submit_clone(hippo_row, TARGET)
    loop.advance(str(op.pk))

    # The platform's state: the restore job was launched, by that one step.
    jobs = e2e_fleet.root / "jobs" / TARGET
    record = json.loads((jobs / f"{op.refs['trigger']}-restore.json").read_text())
    assert record["pid"]
    op.refresh_from_db()
    assert (op.status, op.step) == (Operation.Status.RUNNING, "restoring")
    events = list(op.events.order_by("at", "id").values_list("step", "message"))
    assert [step for step, _ in events] == ["requested", "restoring", "restoring"], events
    assert events[-1][1] == f"Started pgBackRest: restore of hippo's repo1 into {TARGET}."
    # And it looks again at the local platform's pace, not the Kubernetes one's.
    assert op.next_check_at is not None
    assert op.next_check_at - timezone.now() <= e2e_fleet.platform.poll_interval
    e2e_fleet.platform.cluster_destroy(ClusterRef(NAMESPACE, TARGET))
