"""advance(op_id): one idempotent step of an operation, and the sweep's list of overdue ones.

Load; stop if terminal; read the world through the platform; apply the next change if it is
missing; record what was seen with a conditional UPDATE and an event; say when to look again.
Running a step twice changes nothing the second time: platform calls are keyed by the
operation's stored trigger value, and transitions only match the state they were computed
from. Each kind's step is in its own module; STEPS maps a kind to it."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import F
from django.utils import timezone

from restores import platforms
from restores.models import Operation
from restores.models.transitions import (
    Level,
    Status,
    operation_lease,
    operation_observe,
    operation_release,
    operation_schedule,
)
from restores.platforms.base import PermanentError, PlatformError
from restores.steps.backups import backup_step
from restores.steps.clones import clone_step
from restores.steps.common import MAX_TRANSIENT_FAILURES, Step, advancing, fail
from restores.steps.drills import drill_step
from restores.steps.inplace import in_place_step
from restores.steps.power import power_call
from restores.steps.promotion import promote_call
from restores.steps.standbys import standby_call

log = logging.getLogger(__name__)


# How long one step may hold its operation: longer than the longest call a step makes (a
# local pg_ctl start / stop waits up to 120 s and is killed at 150 s), so a slow step is never
# joined by a second one; a worker killed mid-step holds it this long.
LEASE_SECONDS = 180




# A delivery that arrives this much before the stored next check is a duplicate: drop it.
EARLY_SLACK = dt.timedelta(milliseconds=500)


TRANSIENT_GAVE_UP = (
    "The platform kept failing ({count} attempts in a row); the last error was: {error}"
)


TRANSIENT_FIX = "Check the platform is reachable, then start the operation again."


UNEXPECTED_ERROR = "An unexpected error stopped this step: {error}"


STEPS: dict[str, Step] = {
    Operation.Kind.BACKUP: backup_step,
    Operation.Kind.CLONE: clone_step,
    Operation.Kind.RESTORE_IN_PLACE: in_place_step,
    Operation.Kind.RESTORE_DATABASE: in_place_step,
    Operation.Kind.SHUTDOWN: advancing(power_call),
    Operation.Kind.START: advancing(power_call),
    Operation.Kind.CREATE_STANDBY: advancing(standby_call),
    Operation.Kind.PROMOTE: advancing(promote_call),
    Operation.Kind.DRILL: drill_step,
}


def transient(op: Operation, exc: PlatformError) -> None:
    failures = Operation.objects.filter(pk=op.pk).update(attempts=F("attempts") + 1)
    op.refresh_from_db(fields=["attempts"])
    if failures and op.attempts >= MAX_TRANSIENT_FAILURES:
        fail(
            op, reason=TRANSIENT_GAVE_UP.format(count=op.attempts, error=exc.message),
            fix=TRANSIENT_FIX, detail=exc.detail,
        )
        return
    operation_observe(op, message=f"Retrying: {exc.message}", level=Level.WARNING)
    operation_schedule(op, delay=dt.timedelta(seconds=min(2**op.attempts, 60)))


def advance(operation_id: str) -> dt.timedelta | None:
    """Run one step of the operation. Returns when to run the next, or None when there is
    nothing to schedule (terminal, not due yet, or another worker holds it)."""
    op = Operation.objects.select_related("cluster").filter(pk=operation_id).first()
    if op is None or op.is_terminal or op.status not in (Status.PENDING, Status.RUNNING):
        return None
    if op.next_check_at and timezone.now() < op.next_check_at - EARLY_SLACK:
        return None
    if not operation_lease(op, seconds=LEASE_SECONDS):
        return None
    try:
        step = STEPS.get(op.kind)
        if step is None:
            fail(op, reason=f"The console cannot run {op.get_kind_display()} operations yet.")
        else:
            step(op, platforms.get(op.cluster.platform))
            Operation.objects.filter(pk=op.pk, attempts__gt=0).update(attempts=0)
    except PermanentError as exc:
        fail(op, reason=exc.message, detail=exc.detail)
    except PlatformError as exc:
        transient(op, exc)
    except Exception as exc:
        # A bug or an unforeseen answer: keep it visible on the operation, and retry with
        # backoff like a transient error so a passing glitch does not fail a restore.
        log.exception("step of operation %s failed", operation_id)
        transient(op, PlatformError(UNEXPECTED_ERROR.format(error=exc)))
    finally:
        operation_release(op)
    op.refresh_from_db(fields=["status", "next_check_at"])
    if op.is_terminal or op.next_check_at is None:
        return None
    return max(op.next_check_at - timezone.now(), dt.timedelta(0))


def due_operations(*, grace: dt.timedelta) -> list[str]:
    """Active operations whose next step is overdue by more than `grace`: the sweep's work."""
    cutoff = timezone.now() - grace
    pending = Operation.objects.filter(status=Status.PENDING, next_check_at__isnull=True,
                                       created_at__lt=cutoff)
    due = Operation.objects.filter(status__in=(Status.PENDING, Status.RUNNING),
                                   next_check_at__lt=cutoff)
    return [str(pk) for pk in (pending | due).values_list("pk", flat=True)]
