"""The in-place restore step: re-check the point and the database names against the repo
(nothing is touched yet), back up the current state (unless turned off), then restore
through the platform."""

from __future__ import annotations

from django.utils import timezone

from restores import inventory, rules
from restores.models import Operation, requests
from restores.models.requests import in_place_request, operation_ref
from restores.models.transitions import Status, operation_transition
from restores.platforms.base import Platform
from restores.platforms.targets import target_from_json
from restores.steps.common import (
    ADVANCE_FAILED_FIX,
    STARTED,
    fail,
    follow,
    point_recheck,
    poll,
    still_running,
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


def in_place_recheck(op: Operation, platform: Platform) -> tuple[str, str]:
    """An in-place restore destroys the current data before PGO or pgBackRest find out that
    a point is out of reach or a database name is wrong: check both against the repo as it is
    now, not the last sync. (reason, fix), or ("", "")."""
    p = op.params
    point = target_from_json(p["point"])
    problem = point_recheck(op.cluster, platform, p["repo"], point)
    if problem:
        return problem, IN_PLACE_WINDOW_MOVED_FIX
    names = tuple(p.get("db_include") or ())
    if not names:
        return "", ""
    repo = op.cluster.repositories.get(name=p["repo"])
    base = rules.check_point(point, requests.repo_window(repo), now=timezone.now()).base
    known = platform.backup_databases(operation_ref(op), repo=p["repo"], label=base)
    missing = [n for n in names if n not in known]
    if missing:
        return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in backup "
                f"set {base}, which holds: {', '.join(known) or 'no user database'}."), \
            IN_PLACE_DB_FIX
    op.refs["db_set"] = base
    Operation.objects.filter(pk=op.pk).update(refs=op.refs)
    return "", ""


def in_place_step(op: Operation, platform: Platform) -> None:
    """Recheck (nothing touched yet), then the backup of the current state (unless turned
    off), then the restore through the platform."""
    p, repo, trigger = op.params, op.params["repo"], op.refs["trigger"]
    safety = bool(p.get("safety_backup"))
    if op.status == Status.PENDING:
        problem, fix = in_place_recheck(op, platform)
        if problem:
            fail(op, reason=problem, fix=fix)
            return
        if safety:
            applied = platform.backup_start(operation_ref(op), repo=repo, backup_type="incr",
                                            operation_id=trigger + SAFETY_SUFFIX)
            operation_transition(
                op, status=Status.RUNNING, step="safety_backup", command=applied.command,
                message=SAFETY_BACKUP_STARTED.format(cluster=op.cluster.name, repo=repo),
                next_check_in=poll(platform))
            return
    if op.step == "safety_backup":
        job = platform.backup_status(operation_ref(op), repo=repo,
                                     operation_id=trigger + SAFETY_SUFFIX)
        if still_running(op, platform, job):
            return
        if job.state == "failed":
            fail(op, reason=SAFETY_BACKUP_FAILED.format(reason=job.message),
                  fix=SAFETY_BACKUP_FIX, detail=job.detail)
            return
        label = job.result.get("label", "")
        if not operation_transition(
            op, status=Status.RUNNING, step="running", next_check_in=poll(platform),
            message=SAFETY_BACKUP_DONE.format(label=label, repo=repo),
            refs={**op.refs, "safety_backup": label},
        ):
            return
        inventory.cluster_sync(cluster=op.cluster)  # the new backup shows on the page
    elif op.status == Status.PENDING and not operation_transition(
        op, status=Status.RUNNING, step="running", next_check_in=poll(platform),
        message=STARTED[op.kind].format(cluster=op.cluster.name),
    ):
        return
    job = platform.restore_in_place_advance(in_place_request(op))
    safety_label = op.refs.get("safety_backup", "")
    follow(op, platform, job, failed="{reason}", fix=ADVANCE_FAILED_FIX[op.kind],
            done=lambda: (job.message or "Done.",
                          {**job.result, **({"safety_backup": safety_label}
                                            if safety_label else {})}))
