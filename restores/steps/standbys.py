"""Creating a standby: the platform restores it from its source's repo and starts it
following that repo."""

from __future__ import annotations

from restores.models import Operation
from restores.models.requests import standby_request
from restores.platforms.base import JobStatus, Platform


def standby_call(op: Operation, platform: Platform) -> JobStatus:
    return platform.standby_advance(standby_request(op))
