"""Shut down and start: the platform stops or starts the cluster and verifies it; a former
primary starts only with the acknowledgement the request recorded."""

from __future__ import annotations

from restores.models import Operation
from restores.models.requests import operation_ref
from restores.platforms.base import JobStatus, Platform


def power_call(op: Operation, platform: Platform) -> JobStatus:
    return platform.power_advance(
        operation_ref(op), operation_id=op.refs["trigger"],
        shutdown=op.kind == Operation.Kind.SHUTDOWN,
        acknowledge_split_brain=bool(op.params.get("acknowledge_split_brain")))
