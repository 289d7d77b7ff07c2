"""The clone / PITR step: re-check the point against the source's repo as it is now, then
launch the restore in the same step and follow it to a new primary."""

from __future__ import annotations

from restores.models import Cluster, Operation
from restores.models.requests import clone_request_of
from restores.models.transitions import Status, operation_transition
from restores.platforms.base import CloneRequest, Platform
from restores.steps.common import fail, follow, point_recheck, poll

CLONE_FAILED_FIX = (
    "Nothing was changed on the source. Read the reason above, fix the point or the name in "
    "a new clone, and delete the half-made cluster if one is listed."
)


CLONE_WINDOW_MOVED_FIX = "Pick a point inside the repo's current window in a new clone."


def clone_recheck(op: Operation, platform: Platform, req: CloneRequest) -> str:
    """Check the point against what the repo holds right now, not the last sync: the window
    may have moved (retention expired the base backup) since the draft was reviewed. A
    cloud repo that no live cluster uses cannot be read: PGO's restore Job is the check."""
    if req.source is None:
        return ""
    source = Cluster.objects.get(
        platform=op.cluster.platform, namespace=req.source.namespace, name=req.source.name
    )
    return point_recheck(source, platform, req.repo, req.point)


def clone_step(op: Operation, platform: Platform) -> None:
    req = clone_request_of(op)
    if op.status == Status.PENDING:
        problem = clone_recheck(op, platform, req)
        if problem:
            fail(op, reason=problem, fix=CLONE_WINDOW_MOVED_FIX)
            return
        plan = platform.clone_plan(req)
        if not operation_transition(
            op, status=Status.RUNNING, step="restoring", message=" ".join(plan.steps[:1]),
            command=plan.command, next_check_in=poll(platform),
        ):
            return
        # Launch in this same step: waiting for the next one would add a poll to every
        # restore. clone_advance is idempotent, so a crash from here on repeats nothing.
    job = platform.clone_advance(req)
    follow(
        op, platform, job, failed="The restore failed: {reason}", fix=CLONE_FAILED_FIX,
        done=lambda: (f"{op.cluster.name} is running, restored from {req.origin}.",
                      dict(job.result)),
    )
