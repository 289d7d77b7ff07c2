"""What every reconcile step shares: how soon to look again, following a job the platform
runs, failing with the reason and the fix, re-checking a point against the repo as it is
now, and the step for operations whose platform call does the next missing piece itself."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from restores import inventory, rules
from restores.models import Cluster, Operation, Repository
from restores.models.requests import repo_window
from restores.models.transitions import (
    Level,
    Status,
    operation_observe,
    operation_schedule,
    operation_transition,
)
from restores.platforms.base import ClusterRef, JobStatus, Platform, PlatformError
from restores.platforms.targets import RestoreTarget

log = logging.getLogger(__name__)

# Transient failures in a row before an operation is failed instead of retried.
MAX_TRANSIENT_FAILURES = 30

Step = Callable[[Operation, Platform], None]


def poll(platform: Platform) -> dt.timedelta:
    """How soon to look again at something the platform runs: its own pace (the local
    platform's processes are cheap to check; Kubernetes is an API server)."""
    return platform.poll_interval


def still_running(op: Operation, platform: Platform, job: JobStatus) -> bool:
    """A job still under way: its news (once per new message), and the next look."""
    if job.state not in ("pending", "running"):
        return False
    if job.message:
        operation_observe(op, message=job.message, detail=job.detail)
    operation_schedule(op, delay=poll(platform))
    return True


def follow(
    op: Operation, platform: Platform, job: JobStatus, *, failed: str, fix: str,
    done: Callable[[], tuple[str, dict[str, Any]]],
) -> None:
    """Record what the platform reports about the job an operation follows: progress (one
    event per new message), failure (with `failed` formatted around the reason, and `fix`),
    or success (the inventory is refreshed first, so the result is visible the moment the
    operation says it is done; `done` then gives the message and result)."""
    if still_running(op, platform, job):
        return
    if job.state == "failed":
        operation_transition(
            op, status=Status.FAILED, step="failed", level=Level.ERROR,
            message=failed.format(reason=job.message), detail=job.detail,
            error_reason=job.message, error_fix=fix,
        )
        return
    inventory.cluster_sync(cluster=op.cluster)
    message, result = done()
    operation_transition(op, status=Status.SUCCEEDED, step="done", result=result,
                         message=message, detail=job.detail)


def fresh_repo(cluster: Cluster, platform: Platform, repo_name: str) -> Repository | None:
    """The repo as the platform reports it now (stored first), or the last sync's copy when
    the platform cannot answer now (a shut-down PGO cluster has no pod to ask)."""
    try:
        repos = platform.repos(ClusterRef(cluster.namespace, cluster.name))
    except PlatformError as exc:
        log.warning("re-reading the repos of %s failed, using the stored window: %s",
                    cluster, exc.message)
    else:
        inventory.repos_store(cluster=cluster, repos=repos)
    return cluster.repositories.filter(name=repo_name).first()


def point_recheck(cluster: Cluster, platform: Platform, repo_name: str,
                   point: RestoreTarget) -> str:
    """Read `cluster`'s repos now (and store them), and check `point` against that window:
    the reason it cannot be reached, or "". When the repos cannot be read now (a shut-down
    PGO cluster has no pod to ask), the last stored window is the check."""
    repo = fresh_repo(cluster, platform, repo_name)
    if repo is None:
        return f"{cluster.name} no longer has a repo named {repo_name}."
    verdict = rules.check_point(point, repo_window(repo), now=timezone.now())
    return verdict.errors[0][1] if verdict.errors else ""


Advance = Callable[[Operation, Platform], JobStatus]


ADVANCE_FAILED_FIX = {
    Operation.Kind.RESTORE_IN_PLACE: "Read the reason above. The cluster may be down: check "
    "its state, then restore again or start it.",
    Operation.Kind.RESTORE_DATABASE: "Read the reason above. The cluster may be down: check "
    "its state, then restore again or start it.",
    Operation.Kind.SHUTDOWN: "Check the cluster's workloads, then try again.",
    Operation.Kind.START: "Check the cluster's workloads and logs, then try again.",
    Operation.Kind.CREATE_STANDBY: "Delete the half-made standby, fix the cause, try again.",
    Operation.Kind.PROMOTE: "Check the standby's leader, then promote again.",
}


STARTED = {
    Operation.Kind.RESTORE_IN_PLACE: "Restoring {cluster} in place.",
    Operation.Kind.RESTORE_DATABASE: "Restoring databases of {cluster} in place.",
    Operation.Kind.SHUTDOWN: "Shutting {cluster} down.",
    Operation.Kind.START: "Starting {cluster}.",
    Operation.Kind.CREATE_STANDBY: "Creating {cluster} as a standby.",
    Operation.Kind.PROMOTE: "Promoting {cluster}.",
}


def advancing(advance: Advance) -> Step:
    """A step for an operation whose platform call does the next missing piece itself. The
    first step records the start, then makes that call at once (as the clone step does)."""

    def step(op: Operation, platform: Platform) -> None:
        if op.status == Status.PENDING and not operation_transition(
            op, status=Status.RUNNING, step="running", next_check_in=poll(platform),
            message=STARTED[op.kind].format(cluster=op.cluster.name),
        ):
            return
        job = advance(op, platform)
        follow(op, platform, job, failed="{reason}", fix=ADVANCE_FAILED_FIX[op.kind],
                done=lambda: (job.message or "Done.", dict(job.result)))

    return step


def fail(op: Operation, *, reason: str, fix: str = "", detail: str = "") -> None:
    operation_transition(
        op, status=Status.FAILED, step="failed", level=Level.ERROR, message=reason,
        detail=detail, error_reason=reason, error_fix=fix,
    )
