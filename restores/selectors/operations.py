"""An operation's page: its events in order."""

from __future__ import annotations

from restores.models import Operation, OperationEvent


def operation_events(op: Operation) -> list[OperationEvent]:
    return list(op.events.order_by("at", "id"))
