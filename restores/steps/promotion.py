"""Promoting a standby: the platform checks the old primary again right before it promotes."""

from __future__ import annotations

from restores.models import Operation
from restores.models.requests import operation_ref
from restores.platforms.base import JobStatus, Platform


def promote_call(op: Operation, platform: Platform) -> JobStatus:
    return platform.promote_advance(operation_ref(op), operation_id=op.refs["trigger"])
