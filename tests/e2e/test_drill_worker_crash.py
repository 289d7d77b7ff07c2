"""A worker dies in the middle of a drill's restore; the beat sweep of a fresh worker finishes
the drill once: one restore, verified, the scratch cluster deleted.

As test_worker_crash.py does for a clone: real Celery workers on Redis, real PostgreSQL and
pgBackRest; no browser. The first worker has no beat, so once it is SIGKILLed only the new
worker's sweep can resume the drill.
"""

from __future__ import annotations

import itertools

import pytest
import redis

from restores.models import Cluster, Operation, OperationEvent
from restores.platforms.base import ClusterRef
from restores.platforms.local.proc import process_alive
from restores.platforms.targets import RestoreTarget
from restores.services import drills

from .conftest import NAMESPACE, E2EFleet, WorkerFactory
from .test_worker_crash import (
    QUEUE,
    RESTORING,
    SWEEP_INTERVAL,
    UNACKED,
    catch_restore_between_steps,
    wait_terminal,
)

pytestmark = pytest.mark.e2e


def test_a_drill_survives_a_worker_killed_mid_restore_and_finishes_exactly_once(
    transactional_db, hippo_row: Cluster, worker_factory: WorkerFactory, e2e_fleet: E2EFleet,  # type: ignore[no-untyped-def]
    e2e_broker: str,
) -> None:
    platform, root = e2e_fleet.platform, e2e_fleet.root
    broker = redis.Redis.from_url(e2e_broker)
    first = worker_factory.start(env={"DR_LOCAL_POLL_MS": "1000"})
    op = drills.drill_request(cluster=hippo_row, repo_name="repo1",
                              point=RestoreTarget(kind="latest"), user=None)
    trigger, scratch = op.refs["trigger"], op.refs["scratch"]["name"]
    jobs = root / "jobs" / scratch

    record = catch_restore_between_steps(op, jobs / f"{trigger}-restore.json",
                                         jobs / f"{trigger}-restore.rc", broker)
    first.kill()
    assert process_alive(record["pid"], record.get("pid_start")), "pgBackRest died with the worker"
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING and op.step == "restoring"
    broker.delete(QUEUE, UNACKED, "unacked_index")
    broker.close()

    second = worker_factory.start(
        beat=True,
        env={"DR_SWEEP_INTERVAL": str(SWEEP_INTERVAL), "DR_INVENTORY_INTERVAL": "3600"},
    )
    op = wait_terminal(op)
    events = list(op.events.order_by("at", "id"))
    timeline = "\n".join(f"{e.at:%H:%M:%S.%f} {e.step} {e.level} {e.message}" for e in events)
    assert op.status == Operation.Status.SUCCEEDED, f"{op.error_reason}\n{timeline}"
    log = second.log.read_text(errors="replace")
    assert 0 <= log.find("Task restores.sweep_operations[") < log.find(
        "Task restores.advance_operation["), second.tail()

    steps = [e.step for e in events]
    assert [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]] == [
        "requested", "restoring", "verifying", "cleaning_up", "done",
    ], timeline  # fmt: skip
    messages = [e.message for e in events]
    assert all(a != b for a, b in itertools.pairwise(messages)), timeline
    for start in ("Started pgBackRest: restore", f"Started PostgreSQL {scratch}"):
        assert sum(m.startswith(start) for m in messages) == 1, timeline
    assert not [e for e in events if e.level == OperationEvent.Level.ERROR], timeline
    pids = {int(m.group(1)) for m in map(RESTORING.match, messages) if m}
    assert pids <= {record["pid"]}, timeline

    # Verified, measured, and nothing of the scratch cluster is left.
    assert all(c["ok"] for c in op.result["checks"]), op.result["checks"]
    assert op.result["rto_seconds"] > 0 and op.result["destroyed_at"]
    assert not platform.cluster_exists(ClusterRef(NAMESPACE, scratch))
    assert list(root.rglob(f"*{scratch}*")) == []
    assert not process_alive(record["pid"], record.get("pid_start"))
    assert platform.sql(ClusterRef(NAMESPACE, "hippo"), "select pg_is_in_recovery()") == [
        (False,)]
