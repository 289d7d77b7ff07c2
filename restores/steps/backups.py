"""The backup step: start a backup tagged with the operation's trigger, follow it, and say
where it is once the inventory shows it."""

from __future__ import annotations

from typing import Any

from restores.models import Backup, Operation
from restores.models.requests import operation_ref
from restores.models.transitions import Status, operation_transition
from restores.platforms.base import Platform
from restores.steps.common import follow, poll

BACKUP_FAILED_FIX = "Read the reason above, fix its cause, and back up again."


BACKUP_LOCKED_FIX = (
    "Another backup or expire of this stanza held pgBackRest's lock: wait for it to finish, "
    "then back up again."
)


def backup_fix(reason: str) -> str:
    return BACKUP_LOCKED_FIX if "[050]" in reason or " lock" in reason else BACKUP_FAILED_FIX


def backup_step(op: Operation, platform: Platform) -> None:
    repo, backup_type = op.params["repo"], op.params["type"]
    trigger = op.refs["trigger"]
    if op.status == Status.PENDING:
        applied = platform.backup_start(
            operation_ref(op), repo=repo, backup_type=backup_type, operation_id=trigger
        )
        operation_transition(
            op, status=Status.RUNNING, step="backing_up", message=applied.summary,
            command=applied.command, next_check_in=poll(platform),
        )
        return
    job = platform.backup_status(operation_ref(op), repo=repo, operation_id=trigger)

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

    follow(op, platform, job, failed="The backup failed: {reason}",
            fix=backup_fix(job.message), done=done)
