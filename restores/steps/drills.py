"""The drill's reconcile steps: restoring → verifying → cleaning up → succeeded / failed.

    pending      re-read the repo (its window and latest recoverable time: the RPO's end),
                 check the point again, record the plan, then launch the scratch clone
    restoring    the platform's clone of the scratch cluster (CloneRequest.scratch: it never
                 writes to any repo); its promotion is when the data was writable (RTO)
    verifying    Platform.verify: version, system identifier (the source's), not in
                 recovery, databases with sizes and user tables, last replayed commit
    cleaning_up  Platform.cluster_destroy of the scratch cluster, whatever happened before:
                 a failure on the way is kept in refs["failure"] and reported after it

Each phase, once done, records its transition and runs the next in the same step, so a
drill takes no poll more than the clone itself. Every phase is safe to run again: the clone
and the destroy are keyed by the operation id, and verify only reads. A transition that
does not match (another worker got there) stops the step.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.utils import timezone

from restores import rules
from restores.models import Backup, Cluster, Operation
from restores.models.drills import DrillRun, run_seal
from restores.models.requests import repo_window, scratch_ref, scratch_request, utc_text
from restores.models.transitions import (
    Level,
    Status,
    operation_observe,
    operation_schedule,
    operation_transition,
)
from restores.platforms.base import (
    ClusterRef,
    PermanentError,
    Platform,
    PlatformError,
    Verification,
)
from restores.platforms.targets import target_from_json
from restores.steps.common import MAX_TRANSIENT_FAILURES, fresh_repo
from restores.steps.drill_checks import (
    DRILL_OBJECTIVES_FIX,
    DRILL_OBJECTIVES_MISSED,
    objectives_missed,
    run_checks,
    size_check,
)

log = logging.getLogger(__name__)

DRILL_WINDOW_MOVED_FIX = (
    "Nothing was created. Pick a point inside the repo's current window and drill again."
)
DRILL_RESTORE_FAILED = "The restore into the scratch cluster failed: {reason}"
DRILL_RESTORE_FAILED_FIX = (
    "The backup could not be restored as it is: read the reason above, fix its cause "
    "(the repo, its WAL, the point), and drill again."
)
DRILL_VERIFY_ERROR = "The scratch cluster could not be verified: {reason}"
DRILL_VERIFY_FAILED = "Verification failed: {checks}."
DRILL_VERIFY_FAILED_FIX = (
    "The restored copy is not what the source should give back: read the failed checks in "
    "the report, then check the repo's backups (pgbackrest verify) before relying on them."
)
DRILL_GAVE_UP = "The platform kept failing during the drill; the last error was: {error}"
DRILL_GAVE_UP_FIX = "Check the platform is reachable, then drill again."
DRILL_CLEANED = "{reason} The scratch cluster {scratch} was deleted."
DRILL_SCRATCH_LEFT = (
    "The scratch cluster {scratch} could not be deleted: {error}{before}"
)
DRILL_SCRATCH_LEFT_FIX = (
    "Delete {scratch} by hand (it is a copy: nothing else uses it), then drill again."
)
DRILL_STILL_THERE = "it still exists {seconds:.0f} s after it was deleted."
# How long a deleted scratch cluster may take to disappear before the drill says so.
DELETE_TIMEOUT = dt.timedelta(minutes=10)
DRILL_PASSED = "Drill passed: RTO {rto} s, RPO {rpo} s; the scratch cluster {scratch} is deleted."


def drill_step(op: Operation, platform: Platform) -> None:
    if op.status == Status.PENDING:
        _start(op, platform)
    elif op.step == "restoring":
        _guarded(op, platform, _restoring)
    elif op.step == "verifying":
        _guarded(op, platform, _verifying)
    elif op.step == "cleaning_up":
        _guarded(op, platform, _cleaning_up)


def _guarded(op: Operation, platform: Platform, phase: Any) -> None:
    """Run a phase that may leave a scratch cluster behind: a permanent error, or a
    transient one that has failed too often, goes to the clean-up instead of failing the
    drill with the scratch cluster still there."""

    try:
        phase(op, platform)
    except PermanentError as exc:
        if op.step == "cleaning_up":
            raise  # the clean-up's own refusals are handled in it; anything else fails
        _to_cleanup(op, platform, reason=exc.message, fix="", detail=exc.detail)
    except PlatformError as exc:
        if op.attempts + 1 < MAX_TRANSIENT_FAILURES:
            raise
        if op.step == "cleaning_up":
            _fail(op, reason=DRILL_SCRATCH_LEFT.format(
                scratch=scratch_ref(op).name, error=exc.message, before=""),
                fix=DRILL_SCRATCH_LEFT_FIX.format(scratch=scratch_ref(op).name),
                detail=exc.detail)
            return
        _to_cleanup(op, platform, reason=DRILL_GAVE_UP.format(error=exc.message),
                    fix=DRILL_GAVE_UP_FIX, detail=exc.detail)


# --- pending: check again, then launch ------------------------------------------------------


def _start(op: Operation, platform: Platform) -> None:
    repo = fresh_repo(op.cluster, platform, op.params["repo"])
    point = target_from_json(op.params["point"])
    if repo is None:
        _fail(op, reason=f"{op.cluster.name} no longer has a repo named {op.params['repo']}.",
              fix=DRILL_WINDOW_MOVED_FIX)
        return
    verdict = rules.check_point(point, repo_window(repo), now=timezone.now())
    if not verdict.ok:
        _fail(op, reason=verdict.errors[0][1], fix=DRILL_WINDOW_MOVED_FIX)
        return
    req = scratch_request(op)
    plan = platform.clone_plan(req)
    # Local: the pgBackRest command line; Kubernetes: the kubectl commands of the clone.
    command = plan.command or "\n".join(plan.kubectl)
    latest = repo.latest_recovery
    refs = {**op.refs, "backup_set": verdict.base, "command": command,
            "latest_recoverable": latest.isoformat() if latest else None}
    message = (f"Restoring {repo.name} (backup set {verdict.base}) into the scratch cluster "
               f"{req.target.name}; the repo's latest recoverable time is "
               f"{utc_text(latest) if latest else 'unknown'}.")
    if not operation_transition(op, status=Status.RUNNING, step="restoring", message=message,
                                command=command, next_check_in=platform.poll_interval,
                                refs=refs):
        return
    _guarded(op, platform, _restoring)


# --- restoring ------------------------------------------------------------------------------


def _restoring(op: Operation, platform: Platform) -> None:
    job = platform.clone_advance(scratch_request(op))
    if job.state in ("pending", "running"):
        if job.message:
            operation_observe(op, message=job.message, detail=job.detail)
        operation_schedule(op, delay=platform.poll_interval)
        return
    if job.state == "failed":
        _to_cleanup(op, platform, reason=DRILL_RESTORE_FAILED.format(reason=job.message),
                    fix=DRILL_RESTORE_FAILED_FIX, detail=job.detail)
        return
    now = timezone.now()
    promoted = job.result.get("promoted_at")
    writable = dt.datetime.fromtimestamp(float(promoted), dt.UTC) if promoted else now
    result = {
        "scratch": scratch_ref(op).name,
        "writable_at": writable.isoformat(),
        "restore_seconds": _number(job.result.get("restore_seconds")),
        "recovery_seconds": _number(job.result.get("recovery_seconds")),
        "restored_bytes": _number(job.result.get("restored_bytes")),
    }
    message = f"{result['scratch']} is restored and writable. {job.message}".strip()
    if operation_transition(op, status=Status.RUNNING, step="verifying", message=message,
                            detail=job.detail, result=result,
                            next_check_in=platform.poll_interval):
        _verifying(op, platform)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


# --- verifying ------------------------------------------------------------------------------


def _verifying(op: Operation, platform: Platform) -> None:
    source = ClusterRef(op.cluster.namespace, op.cluster.name)
    try:
        found = platform.verify(scratch_ref(op), source=source)
    except PermanentError as exc:
        _to_cleanup(op, platform, reason=DRILL_VERIFY_ERROR.format(reason=exc.message),
                    fix=DRILL_VERIFY_FAILED_FIX, detail=exc.detail)
        return
    checks = verification_checks(found, expected=_expected_databases(op))
    size = size_check(sum(d.size_bytes for d in found.databases), _backup_size(op))
    checks += [size] if size else []
    objectives = op.params.get("objectives") or {}
    checks += run_checks(platform, scratch_ref(op), source, op.params.get("checks") or [],
                         target=check_target(op), rpo_objective=objectives.get("rpo_seconds"))
    failed = [c["check"] for c in checks if not c["ok"]]
    result = {**op.result, "verification": verification_json(found), "checks": checks}
    refs = {**op.refs, "cleanup_at": timezone.now().isoformat()}
    if failed:
        reason = DRILL_VERIFY_FAILED.format(checks="; ".join(
            f"{c['check']}: {c['detail']}" for c in checks if not c["ok"]))
        refs["failure"] = {"reason": reason, "fix": DRILL_VERIFY_FAILED_FIX}
        message, level = reason, Level.ERROR
    else:
        message, level = (f"Verified: {len(checks)} checks passed on "
                          f"{found.server_version}."), Level.INFO
    if operation_transition(op, status=Status.RUNNING, step="cleaning_up", message=message,
                            level=level, command=found.command, result=result, refs=refs,
                            next_check_in=platform.poll_interval):
        _cleaning_up(op, platform)


def _backup(op: Operation) -> Backup | None:
    return Backup.objects.filter(repository__cluster=op.cluster, repository__name=op.params[
        "repo"], label=op.refs.get("backup_set")).first()


def _expected_databases(op: Operation) -> list[str] | None:
    """The databases the backup set holds, when the inventory has read them."""
    backup = _backup(op)
    return list(backup.databases) if backup and backup.databases else None


def _backup_size(op: Operation) -> int | None:
    backup = _backup(op)
    return backup.database_size if backup else None


def check_target(op: Operation) -> dt.datetime | None:
    """The instant the copy should hold data up to: the drill's point in time, or for
    "latest" the repo's latest recoverable time when the drill started."""
    point = op.params.get("point") or {}
    at = point.get("time") or op.refs.get("latest_recoverable")
    return dt.datetime.fromisoformat(at) if at else None


def verification_checks(found: Verification, *,
                        expected: list[str] | None) -> list[dict[str, Any]]:
    """Each check the drill makes of its restored copy: name, passed, and what was seen."""
    same = bool(found.source_system_identifier) and (
        found.system_identifier == found.source_system_identifier)
    checks = [
        {"check": "accepts writes", "kind": "restore", "ok": not found.in_recovery,
         "detail": "pg_is_in_recovery() is false" if not found.in_recovery
         else "still in recovery after the promotion"},
        {"check": "same system", "kind": "restore", "ok": same,
         "detail": f"system identifier {found.system_identifier}"
         + ("" if same else f", the source's is {found.source_system_identifier or 'unreadable'}")},
        {"check": "databases", "kind": "restore", "ok": bool(found.databases),
         "detail": f"{len(found.databases)} database(s), "
         f"{sum(d.user_tables for d in found.databases)} user table(s)"},
    ]
    if expected is not None:
        names = {d.name for d in found.databases}
        missing = sorted(set(expected) - names)
        checks.append({"check": "backup's databases", "kind": "restore", "ok": not missing,
                       "detail": "all of " + ", ".join(sorted(expected)) if not missing
                       else "missing " + ", ".join(missing)})
    return checks


def verification_json(found: Verification) -> dict[str, Any]:
    return {
        "server_version": found.server_version,
        "system_identifier": found.system_identifier,
        "source_system_identifier": found.source_system_identifier,
        "in_recovery": found.in_recovery,
        "databases": [{"name": d.name, "size_bytes": d.size_bytes,
                       "user_tables": d.user_tables} for d in found.databases],
        "last_replayed_commit": (found.last_replayed_commit.isoformat()
                                 if found.last_replayed_commit else None),
    }


# --- cleaning up ----------------------------------------------------------------------------


def _to_cleanup(op: Operation, platform: Platform, *, reason: str, fix: str,
                detail: str = "") -> None:
    refs = {**op.refs, "failure": {"reason": reason, "fix": fix},
            "cleanup_at": timezone.now().isoformat()}
    if operation_transition(op, status=Status.RUNNING, step="cleaning_up", message=reason,
                            level=Level.ERROR, detail=detail, refs=refs,
                            next_check_in=platform.poll_interval):
        _cleaning_up(op, platform)


def _cleaning_up(op: Operation, platform: Platform) -> None:
    scratch = scratch_ref(op)
    failure = op.refs.get("failure")
    before = f" (the drill had already failed: {failure['reason']})" if failure else ""
    try:
        applied = platform.cluster_destroy(scratch, operation_id=op.refs["trigger"])
    except PermanentError as exc:
        _fail(op, reason=DRILL_SCRATCH_LEFT.format(scratch=scratch.name, error=exc.message,
                                                   before=before),
              fix=DRILL_SCRATCH_LEFT_FIX.format(scratch=scratch.name), detail=exc.detail)
        return
    if platform.cluster_exists(scratch):
        # Deleting takes a while where an operator finalizes it (PGO removes pods, volumes).
        since = dt.datetime.fromisoformat(op.refs.get("cleanup_at") or op.updated_at.isoformat())
        if timezone.now() - since > DELETE_TIMEOUT:
            _fail(op, reason=DRILL_SCRATCH_LEFT.format(
                scratch=scratch.name, error=DRILL_STILL_THERE.format(
                    seconds=DELETE_TIMEOUT.total_seconds()), before=before),
                fix=DRILL_SCRATCH_LEFT_FIX.format(scratch=scratch.name))
            return
        operation_observe(op, message=applied.summary)
        operation_schedule(op, delay=platform.poll_interval)
        return
    # The inventory may have listed the scratch cluster while it lived; it has no history
    # of its own worth keeping (its drill's operation holds the evidence).
    Cluster.objects.filter(platform=op.cluster.platform, namespace=scratch.namespace,
                           name=scratch.name, operations__isnull=True).delete()
    result = {**op.result, **drill_figures(op), "scratch": scratch.name,
              "destroyed_at": timezone.now().isoformat()}
    missed = objectives_missed(result, op.params.get("objectives") or {})
    if missed and not failure:
        failure = {"reason": DRILL_OBJECTIVES_MISSED.format(missed="; ".join(missed)),
                   "fix": DRILL_OBJECTIVES_FIX}
    if failure:
        reason = DRILL_CLEANED.format(reason=failure["reason"], scratch=scratch.name)
        if operation_transition(op, status=Status.FAILED, step="failed", level=Level.ERROR,
                                message=reason, command=applied.command, result=result,
                                error_reason=reason, error_fix=failure["fix"]):
            _seal(op, DrillRun.Outcome.FAILED, failure["reason"])
        return
    if operation_transition(
        op, status=Status.SUCCEEDED, step="done", command=applied.command, result=result,
        message=DRILL_PASSED.format(rto=result.get("rto_seconds"),
                                    rpo=result.get("rpo_seconds"), scratch=scratch.name),
    ):
        _seal(op, DrillRun.Outcome.PASSED, "")


def _seal(op: Operation, outcome: str, reason: str) -> None:
    """Write the drill's run once, with its evidence (the audit chain gets its hash)."""
    run = DrillRun.objects.filter(operation=op).first()
    if run is not None:
        op.refresh_from_db()
        run_seal(run, outcome=outcome, reason=reason, op=op)


def drill_figures(op: Operation) -> dict[str, Any]:
    """RTO (the click to a writable scratch cluster), RPO (the click less the repo's latest
    recoverable time when the drill started), and what was restored and how."""
    requested = dt.datetime.fromisoformat(op.params.get("requested_at")
                                          or op.created_at.isoformat())
    figures: dict[str, Any] = {
        "requested_at": requested.isoformat(),
        "point": op.params["point"],
        "repo": op.params["repo"],
        "backup_set": op.refs.get("backup_set", ""),
        "command": op.refs.get("command", ""),
        "latest_recoverable": op.refs.get("latest_recoverable"),
    }
    if op.result.get("writable_at"):
        writable = dt.datetime.fromisoformat(op.result["writable_at"])
        figures["rto_seconds"] = round((writable - requested).total_seconds(), 1)
    if op.refs.get("latest_recoverable"):
        latest = dt.datetime.fromisoformat(op.refs["latest_recoverable"])
        figures["rpo_seconds"] = round(max((requested - latest).total_seconds(), 0.0), 1)
    return figures


def _fail(op: Operation, *, reason: str, fix: str = "", detail: str = "") -> None:
    if operation_transition(op, status=Status.FAILED, step="failed", level=Level.ERROR,
                            message=reason, detail=detail, error_reason=reason, error_fix=fix,
                            result={**op.result, **drill_figures(op)} if op.result else {}):
        _seal(op, DrillRun.Outcome.FAILED, reason)
