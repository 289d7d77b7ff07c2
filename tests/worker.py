"""What a Celery worker does with an operation, for the tests that run its steps in-process:
`run_step` runs the next step once it is due, `run_until_done` runs steps until the
operation ends."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from restores.models import Operation
from restores.steps import loop


def run_step(op: Operation, times: int = 1) -> Operation:
    """Run the operation's next step as a worker would once it is due, `times` times or
    until it ends; the operation, read again."""
    for _ in range(times):
        Operation.objects.filter(pk=op.pk, status__in=Operation.ACTIVE).update(
            next_check_at=timezone.now())
        loop.advance(str(op.id))
        op.refresh_from_db()
        if op.is_terminal:
            break
    return op


def run_until_done(op: Operation, limit: int = 10,
                   between: Callable[[], None] | None = None) -> Operation:
    """Steps until the operation ends (`between` runs after each one that did not end it,
    e.g. PGO's time passing); an AssertionError naming its events if `limit` is not enough."""
    for _ in range(limit):
        if run_step(op).is_terminal:
            return op
        if between is not None:
            between()
    raise AssertionError(f"{op} did not finish in {limit} steps: {messages(op)}")


def messages(op: Operation) -> list[str]:
    """The messages of the operation's events, oldest first."""
    return list(op.events.order_by("at", "id").values_list("message", flat=True))
