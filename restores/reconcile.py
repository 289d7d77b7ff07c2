"""reconcile.advance(op_id): one idempotent step of an operation.

Load; stop if terminal; read the world through the platform; apply the next change if it is
missing; record what was seen with a conditional UPDATE and an event; say when to look again.
Running a step twice changes nothing the second time: platform calls are keyed by the
operation's stored trigger value, and transitions only match the state they were computed from.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.utils import timezone

from . import clones, inventory, platforms, rules
from .drill_steps import drill_step
from .models import Backup, Cluster, Operation
from .platforms.base import (
    CloneRequest,
    ClusterRef,
    InPlaceRestoreRequest,
    JobStatus,
    PermanentError,
    Platform,
    PlatformError,
    StandbyRequest,
)
from .platforms.targets import RestoreTarget
from .transitions import (
    Level,
    Status,
    operation_lease,
    operation_observe,
    operation_release,
    operation_schedule,
    operation_transition,
)

log = logging.getLogger(__name__)

# How long one step may hold its operation: longer than the longest call a step makes (a
# local pg_ctl start / stop waits up to 120 s and is killed at 150 s), so a slow step is never
# joined by a second one; a worker killed mid-step holds it this long.
LEASE_SECONDS = 180
# Transient failures in a row before an operation is failed instead of retried.
MAX_TRANSIENT_FAILURES = 30
# A delivery that arrives this much before the stored next check is a duplicate: drop it.
EARLY_SLACK = dt.timedelta(milliseconds=500)

TRANSIENT_GAVE_UP = (
    "The platform kept failing ({count} attempts in a row); the last error was: {error}"
)
TRANSIENT_FIX = "Check the platform is reachable, then start the operation again."
UNEXPECTED_ERROR = "An unexpected error stopped this step: {error}"

Step = Callable[[Operation, Platform], None]


def _poll(platform: Platform) -> dt.timedelta:
    """How soon to look again at something the platform runs: its own pace (the local
    platform's processes are cheap to check; Kubernetes is an API server)."""
    return platform.poll_interval


def _ref(op: Operation) -> ClusterRef:
    return ClusterRef(op.cluster.namespace, op.cluster.name)


def _still_running(op: Operation, platform: Platform, job: JobStatus) -> bool:
    """A job still under way: its news (once per new message), and the next look."""
    if job.state not in ("pending", "running"):
        return False
    if job.message:
        operation_observe(op, message=job.message, detail=job.detail)
    operation_schedule(op, delay=_poll(platform))
    return True


def _follow(
    op: Operation, platform: Platform, job: JobStatus, *, failed: str, fix: str,
    done: Callable[[], tuple[str, dict[str, Any]]],
) -> None:
    """Record what the platform reports about the job an operation follows: progress (one
    event per new message), failure (with `failed` formatted around the reason, and `fix`),
    or success (the inventory is refreshed first, so the result is visible the moment the
    operation says it is done; `done` then gives the message and result)."""
    if _still_running(op, platform, job):
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


# --- backup ---------------------------------------------------------------------------------

BACKUP_FAILED_FIX = "Read the reason above, fix its cause, and back up again."
BACKUP_LOCKED_FIX = (
    "Another backup or expire of this stanza held pgBackRest's lock: wait for it to finish, "
    "then back up again."
)


def _backup_fix(reason: str) -> str:
    return BACKUP_LOCKED_FIX if "[050]" in reason or " lock" in reason else BACKUP_FAILED_FIX


def _backup_step(op: Operation, platform: Platform) -> None:
    repo, backup_type = op.params["repo"], op.params["type"]
    trigger = op.refs["trigger"]
    if op.status == Status.PENDING:
        applied = platform.backup_start(
            _ref(op), repo=repo, backup_type=backup_type, operation_id=trigger
        )
        operation_transition(
            op, status=Status.RUNNING, step="backing_up", message=applied.summary,
            command=applied.command, next_check_in=_poll(platform),
        )
        return
    job = platform.backup_status(_ref(op), repo=repo, operation_id=trigger)

    def done() -> tuple[str, dict[str, Any]]:
        label = job.result.get("label", "")
        stored = Backup.objects.filter(
            repository__cluster=op.cluster, repository__name=repo, label=label
        ).first()
        result: dict[str, Any] = {"label": label, "repo": repo, "type": backup_type}
        if stored:
            result.update(
                duration_s=round(stored.duration.total_seconds(), 1),
                database_size=stored.database_size,
                repo_size=stored.repo_delta,
            )
        return f"Backup {label} is in {repo}.", result

    _follow(op, platform, job, failed="The backup failed: {reason}",
            fix=_backup_fix(job.message), done=done)


# --- clone / PITR into a new cluster ------------------------------------------------------

CLONE_FAILED_FIX = (
    "Nothing was changed on the source. Read the reason above, fix the point or the name in "
    "a new clone, and delete the half-made cluster if one is listed."
)
CLONE_WINDOW_MOVED_FIX = "Pick a point inside the repo's current window in a new clone."


def _clone_recheck(op: Operation, platform: Platform, req: CloneRequest) -> str:
    """Check the point against what the repo holds right now, not the last sync: the window
    may have moved (retention expired the base backup) since the draft was reviewed. A
    cloud repo that no live cluster uses cannot be read: PGO's restore Job is the check."""
    if req.source is None:
        return ""
    source = Cluster.objects.get(
        platform=op.cluster.platform, namespace=req.source.namespace, name=req.source.name
    )
    return _point_recheck(source, platform, req.repo, req.point)


def _point_recheck(cluster: Cluster, platform: Platform, repo_name: str,
                   point: RestoreTarget) -> str:
    """Read `cluster`'s repos now (and store them), and check `point` against that window:
    the reason it cannot be reached, or "". When the repos cannot be read now (a shut-down
    PGO cluster has no pod to ask), the last stored window is the check."""
    try:
        repos = platform.repos(ClusterRef(cluster.namespace, cluster.name))
    except PlatformError as exc:
        log.warning("re-reading the repos of %s failed, checking the stored window: %s",
                    cluster, exc.message)
    else:
        inventory.repos_store(cluster=cluster, repos=repos)
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None:
        return f"{cluster.name} no longer has a repo named {repo_name}."
    verdict = rules.check_point(point, clones.repo_window(repo), now=timezone.now())
    return verdict.errors[0][1] if verdict.errors else ""


def _clone_step(op: Operation, platform: Platform) -> None:
    req = clones.operation_request(op)
    if op.status == Status.PENDING:
        problem = _clone_recheck(op, platform, req)
        if problem:
            _fail(op, reason=problem, fix=CLONE_WINDOW_MOVED_FIX)
            return
        plan = platform.clone_plan(req)
        if not operation_transition(
            op, status=Status.RUNNING, step="restoring", message=" ".join(plan.steps[:1]),
            command=plan.command, next_check_in=_poll(platform),
        ):
            return
        # Launch in this same step: waiting for the next one would add a poll to every
        # restore. clone_advance is idempotent, so a crash from here on repeats nothing.
    job = platform.clone_advance(req)
    _follow(
        op, platform, job, failed="The restore failed: {reason}", fix=CLONE_FAILED_FIX,
        done=lambda: (f"{op.cluster.name} is running, restored from {req.origin}.",
                      dict(job.result)),
    )


# --- operations that follow the platform's *_advance contract ------------------------------

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


def _point(data: dict[str, Any]) -> RestoreTarget:
    return RestoreTarget(
        kind=data["kind"],
        time=dt.datetime.fromisoformat(data["time"]) if data.get("time") else None,
        lsn=data.get("lsn") or None, xid=int(data["xid"]) if data.get("xid") else None,
        name=data.get("name") or None, label=data.get("label") or None,
        exclusive=bool(data.get("exclusive")),
    )


IN_PLACE_WINDOW_MOVED_FIX = (
    "Nothing was changed on the cluster. Pick a point inside the repo's current window and "
    "restore again."
)
IN_PLACE_DB_FIX = (
    "Nothing was changed on the cluster: it keeps running. Choose databases the backup set "
    "holds and restore again."
)
SAFETY_BACKUP_STARTED = (
    "Backing up the current state of {cluster} to {repo} first, so this restore can be undone."
)
SAFETY_BACKUP_DONE = (
    "Backup {label} of the state before this restore is in {repo}: restoring to the end of "
    "that set undoes this restore. Now restoring."
)
SAFETY_BACKUP_FAILED = (
    "The backup of the current state failed, so nothing was restored and the cluster was not "
    "touched: {reason}"
)
SAFETY_BACKUP_FIX = (
    "Fix the backup's cause (read the reason above) and restore again; or restore without a "
    "backup of the current state first (the form's checkbox) if its changes may be lost."
)
SAFETY_SUFFIX = "-before"


def _in_place_recheck(op: Operation, platform: Platform) -> tuple[str, str]:
    """An in-place restore destroys the current data before PGO or pgBackRest find out that
    a point is out of reach or a database name is wrong: check both against the repo as it is
    now, not the last sync. (reason, fix), or ("", "")."""
    p = op.params
    point = _point(p["point"])
    problem = _point_recheck(op.cluster, platform, p["repo"], point)
    if problem:
        return problem, IN_PLACE_WINDOW_MOVED_FIX
    names = tuple(p.get("db_include") or ())
    if not names:
        return "", ""
    repo = op.cluster.repositories.get(name=p["repo"])
    base = rules.check_point(point, clones.repo_window(repo), now=timezone.now()).base
    known = platform.backup_databases(_ref(op), repo=p["repo"], label=base)
    missing = [n for n in names if n not in known]
    if missing:
        return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in backup "
                f"set {base}, which holds: {', '.join(known) or 'no user database'}."), \
            IN_PLACE_DB_FIX
    op.refs["db_set"] = base
    Operation.objects.filter(pk=op.pk).update(refs=op.refs)
    return "", ""


def _in_place(op: Operation, platform: Platform) -> JobStatus:
    p = op.params
    return platform.restore_in_place_advance(InPlaceRestoreRequest(
        operation_id=op.refs["trigger"], cluster=_ref(op), repo=p["repo"],
        point=_point(p["point"]), db_include=tuple(p.get("db_include") or ()),
        process_max=p.get("process_max"), db_set=op.refs.get("db_set", ""),
    ))


def _in_place_step(op: Operation, platform: Platform) -> None:
    """Recheck (nothing touched yet), then the backup of the current state (unless turned
    off), then the restore through the platform."""
    p, repo, trigger = op.params, op.params["repo"], op.refs["trigger"]
    safety = bool(p.get("safety_backup"))
    if op.status == Status.PENDING:
        problem, fix = _in_place_recheck(op, platform)
        if problem:
            _fail(op, reason=problem, fix=fix)
            return
        if safety:
            applied = platform.backup_start(_ref(op), repo=repo, backup_type="incr",
                                            operation_id=trigger + SAFETY_SUFFIX)
            operation_transition(
                op, status=Status.RUNNING, step="safety_backup", command=applied.command,
                message=SAFETY_BACKUP_STARTED.format(cluster=op.cluster.name, repo=repo),
                next_check_in=_poll(platform))
            return
    if op.step == "safety_backup":
        job = platform.backup_status(_ref(op), repo=repo, operation_id=trigger + SAFETY_SUFFIX)
        if _still_running(op, platform, job):
            return
        if job.state == "failed":
            _fail(op, reason=SAFETY_BACKUP_FAILED.format(reason=job.message),
                  fix=SAFETY_BACKUP_FIX, detail=job.detail)
            return
        label = job.result.get("label", "")
        if not operation_transition(
            op, status=Status.RUNNING, step="running", next_check_in=_poll(platform),
            message=SAFETY_BACKUP_DONE.format(label=label, repo=repo),
            refs={**op.refs, "safety_backup": label},
        ):
            return
        inventory.cluster_sync(cluster=op.cluster)  # the new backup shows on the page
    elif op.status == Status.PENDING and not operation_transition(
        op, status=Status.RUNNING, step="running", next_check_in=_poll(platform),
        message=STARTED[op.kind].format(cluster=op.cluster.name),
    ):
        return
    job = _in_place(op, platform)
    safety_label = op.refs.get("safety_backup", "")
    _follow(op, platform, job, failed="{reason}", fix=ADVANCE_FAILED_FIX[op.kind],
            done=lambda: (job.message or "Done.",
                          {**job.result, **({"safety_backup": safety_label}
                                            if safety_label else {})}))


def _power(op: Operation, platform: Platform) -> JobStatus:
    return platform.power_advance(
        _ref(op), operation_id=op.refs["trigger"], shutdown=op.kind == Operation.Kind.SHUTDOWN,
        acknowledge_split_brain=bool(op.params.get("acknowledge_split_brain")))


def _standby(op: Operation, platform: Platform) -> JobStatus:
    p = op.params
    return platform.standby_advance(StandbyRequest(
        operation_id=op.refs["trigger"],
        source=ClusterRef(p["source"]["namespace"], p["source"]["name"]), target=_ref(op),
        repo=p.get("repo"), host=p.get("host"), port=p.get("port"), storage=p.get("storage", ""),
    ))


def _promote(op: Operation, platform: Platform) -> JobStatus:
    return platform.promote_advance(_ref(op), operation_id=op.refs["trigger"])


def _advancing(advance: Advance) -> Step:
    """A step for an operation whose platform call does the next missing piece itself. The
    first step records the start, then makes that call at once (as the clone step does)."""

    def step(op: Operation, platform: Platform) -> None:
        if op.status == Status.PENDING and not operation_transition(
            op, status=Status.RUNNING, step="running", next_check_in=_poll(platform),
            message=STARTED[op.kind].format(cluster=op.cluster.name),
        ):
            return
        job = advance(op, platform)
        _follow(op, platform, job, failed="{reason}", fix=ADVANCE_FAILED_FIX[op.kind],
                done=lambda: (job.message or "Done.", dict(job.result)))

    return step


STEPS: dict[str, Step] = {
    Operation.Kind.BACKUP: _backup_step,
    Operation.Kind.CLONE: _clone_step,
    Operation.Kind.RESTORE_IN_PLACE: _in_place_step,
    Operation.Kind.RESTORE_DATABASE: _in_place_step,
    Operation.Kind.SHUTDOWN: _advancing(_power),
    Operation.Kind.START: _advancing(_power),
    Operation.Kind.CREATE_STANDBY: _advancing(_standby),
    Operation.Kind.PROMOTE: _advancing(_promote),
    Operation.Kind.DRILL: drill_step,
}


# --- the loop -------------------------------------------------------------------------------


def _fail(op: Operation, *, reason: str, fix: str = "", detail: str = "") -> None:
    operation_transition(
        op, status=Status.FAILED, step="failed", level=Level.ERROR, message=reason,
        detail=detail, error_reason=reason, error_fix=fix,
    )


def _transient(op: Operation, exc: PlatformError) -> None:
    failures = Operation.objects.filter(pk=op.pk).update(attempts=F("attempts") + 1)
    op.refresh_from_db(fields=["attempts"])
    if failures and op.attempts >= MAX_TRANSIENT_FAILURES:
        _fail(
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
            _fail(op, reason=f"The console cannot run {op.get_kind_display()} operations yet.")
        else:
            step(op, platforms.get(op.cluster.platform))
            Operation.objects.filter(pk=op.pk, attempts__gt=0).update(attempts=0)
    except PermanentError as exc:
        _fail(op, reason=exc.message, detail=exc.detail)
    except PlatformError as exc:
        _transient(op, exc)
    except Exception as exc:
        # A bug or an unforeseen answer: keep it visible on the operation, and retry with
        # backoff like a transient error so a passing glitch does not fail a restore.
        log.exception("step of operation %s failed", operation_id)
        _transient(op, PlatformError(UNEXPECTED_ERROR.format(error=exc)))
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

