"""A worker dies in the middle of a clone; the beat sweep of a fresh worker finishes it, once.

Real Celery workers on Redis, real PostgreSQL and pgBackRest (conftest.py); no browser. The
first worker has no beat, so once it is SIGKILLed nothing but the new worker's sweep can
resume the operation: the message it held stays unacknowledged in Redis (for the broker's
visibility timeout, an hour), exactly as after a crash or the OOM killer.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import time
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from restores.models import Cluster, Operation, OperationEvent
from restores.platforms.base import ClusterRef
from restores.platforms.local.proc import process_alive

from .conftest import NAMESPACE, E2EFleet, WorkerFactory, submit_clone

pytestmark = pytest.mark.e2e

TARGET = "orca"
SWEEP_INTERVAL = 2
CATCH_TIMEOUT = 60.0
FINISH_TIMEOUT = 180.0
# The worker must be between two steps when it is killed: holding no lease (a lease held by
# a dead worker keeps everyone out for reconcile.LEASE_SECONDS) and with its next step not
# due for a while yet.
IDLE_MARGIN = dt.timedelta(milliseconds=300)
# kombu's Redis transport: the default queue is a list named after it, and a message a worker
# has taken but not acknowledged sits in the `unacked` hash.
QUEUE, UNACKED = "celery", "unacked"
RESTORING = re.compile(r"pgBackRest is restoring .* \(pid (\d+)\)\.")


def _job_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being written
        return None


def message_held_by_worker(broker: redis.Redis) -> bool:
    """The next step's message was taken by the worker (it waits there for its countdown):
    the queue is empty and one message is unacknowledged."""
    return broker.llen(QUEUE) == 0 and broker.hlen(UNACKED) == 1


def catch_restore_between_steps(
    op: Operation, record_path: Path, rc_path: Path, broker: redis.Redis
) -> dict:
    """Wait until pgBackRest is restoring and the worker is idle between two steps, holding
    the message of the next one; return the restore's job record."""
    deadline = time.monotonic() + CATCH_TIMEOUT
    while True:
        assert time.monotonic() < deadline, "the clone's restore was never seen running"
        record = _job_record(record_path)
        if record and record.get("pid"):
            assert not rc_path.exists(), (
                "the restore ended before the worker was caught between two steps: too fast a "
                "restore for this test to kill the worker in the middle of it"
            )
            idle = Operation.objects.filter(
                pk=op.pk, status=Operation.Status.RUNNING, lease_until__isnull=True,
                next_check_at__gt=timezone.now() + IDLE_MARGIN,
            ).exists()  # fmt: skip
            alive = process_alive(record["pid"], record.get("pid_start"))
            if idle and alive and message_held_by_worker(broker):
                return record
        time.sleep(0.02)


def wait_terminal(op: Operation) -> Operation:
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        op.refresh_from_db()
        if op.is_terminal:
            return op
        assert time.monotonic() < deadline, f"the clone is still {op.status}: {op.step}"
        time.sleep(0.2)


def test_a_clone_survives_a_worker_killed_mid_restore_and_finishes_exactly_once(
    transactional_db, hippo_row: Cluster, worker_factory: WorkerFactory, e2e_fleet: E2EFleet,  # type: ignore[no-untyped-def]
    e2e_broker: str,
) -> None:
    platform, root = e2e_fleet.platform, e2e_fleet.root
    broker = redis.Redis.from_url(e2e_broker)
    # Steps a second apart (not the local platform's default pace), so that the worker can be
    # caught idle with its next step more than IDLE_MARGIN away.
    first = worker_factory.start(env={"DR_LOCAL_POLL_MS": "1000"})
    op = submit_clone(hippo_row, TARGET)
    trigger = op.refs["trigger"]
    jobs = root / "jobs" / TARGET
    restore_record = jobs / f"{trigger}-restore.json"
    restore_rc = jobs / f"{trigger}-restore.rc"

    record = catch_restore_between_steps(op, restore_record, restore_rc, broker)
    assert op.events.filter(message__startswith="Started pgBackRest: restore of hippo").exists()
    first.kill()
    # pgBackRest runs in a session of its own: the worker's death does not take it down.
    assert process_alive(record["pid"], record.get("pid_start")), "pgBackRest died with the worker"
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING and op.step == "restoring"
    # Whatever the dead worker held is lost, as after a Redis restart (kombu would otherwise
    # hand it back only after its one-hour visibility timeout): only the sweep can resume it.
    broker.delete(QUEUE, UNACKED, "unacked_index")
    assert broker.llen(QUEUE) == 0 and broker.hlen(UNACKED) == 0
    broker.close()

    second = worker_factory.start(
        beat=True,
        env={"DR_SWEEP_INTERVAL": str(SWEEP_INTERVAL), "DR_INVENTORY_INTERVAL": "3600"},
    )
    op = wait_terminal(op)
    events = list(op.events.order_by("at", "id"))
    timeline = "\n".join(f"{e.at:%H:%M:%S.%f} {e.step} {e.level} {e.message}" for e in events)
    assert op.status == Operation.Status.SUCCEEDED, f"{op.error_reason}\n{timeline}"

    # The new worker's sweep resumed it: nothing else could (the first worker had no beat).
    log = second.log.read_text(errors="replace")
    swept = log.find("Task restores.sweep_operations[")
    advanced = log.find("Task restores.advance_operation[")
    assert 0 <= swept < advanced, second.tail()

    # One transition each, in order; the platform's reports recorded once each.
    steps = [e.step for e in events]
    assert [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]] == [
        "requested", "restoring", "done",
    ], timeline  # fmt: skip
    assert steps.count("done") == 1, timeline
    assert len([e for e in events if e.command]) == 1, timeline  # the plan, when it started
    messages = [e.message for e in events]
    assert all(a != b for a, b in itertools.pairwise(messages)), timeline
    # The step that recorded the start launched the restore: nothing came in between.
    assert messages[steps.index("restoring") + 1].startswith(
        "Started pgBackRest: restore of hippo's repo1 into orca"
    ), timeline
    for start in ("Started pgBackRest: restore", "Started PostgreSQL orca"):
        assert sum(m.startswith(start) for m in messages) == 1, timeline
    assert not [e for e in events if e.level == OperationEvent.Level.ERROR], timeline
    # Every report of the running restore names the one process the first worker launched.
    pids = {int(m.group(1)) for m in map(RESTORING.match, messages) if m}
    assert pids <= {record["pid"]}, timeline

    # One restore and one first backup were launched, and each ran once.
    launched = sorted(p.name for p in jobs.iterdir())
    kinds, exts = ("restore", "first-backup"), ("json", "log", "rc")
    assert launched == sorted(f"{trigger}-{job}.{ext}" for job in kinds for ext in exts)
    assert _job_record(restore_record) == record
    assert restore_rc.read_text().strip() == "0"
    assert (jobs / f"{trigger}-first-backup.rc").read_text().strip() == "0"
    restore_log = (jobs / f"{trigger}-restore.log").read_text(errors="replace")
    assert restore_log.count("restore command begin") == 1, restore_log
    backup_log = (jobs / f"{trigger}-first-backup.log").read_text(errors="replace")
    assert backup_log.count("backup command begin") == 1, backup_log
    # Started once for recovery, restarted once to turn archiving on.
    server_log = (root / "pglog" / f"{TARGET}.log").read_text(errors="replace")
    assert server_log.count("starting PostgreSQL") == 2, server_log[-4000:]

    orca = ClusterRef(NAMESPACE, TARGET)
    (repo,) = platform.repos(orca)
    assert [b.label for b in repo.backups] == [op.result["first_backup"]]
    assert platform.sql(orca, "select count(*) from users", database="hippo") == [(1000,)]
    assert platform.sql(orca, "select pg_is_in_recovery()") == [(False,)]
    assert Cluster.objects.get(name=TARGET).role == Cluster.Role.PRIMARY
