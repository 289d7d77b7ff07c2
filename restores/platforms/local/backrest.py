"""pgBackRest for local clusters: stanza set-up, repo inventory, and background backups.

Every call names the cluster's own config file and the stanza explicitly, so nothing reads
/etc/pgbackrest* or writes /var/log/pgbackrest or /tmp/pgbackrest.
"""

from __future__ import annotations

import datetime as dt
import json

from .. import pgbackrest
from ..base import (
    Applied,
    Backup,
    BackupType,
    JobStatus,
    PermanentError,
    RepoInventory,
    TransientError,
)
from ..restore_options import SYSTEM_DATABASES
from ..targets import LABEL_RE
from .fleet import STANZA, ClusterRecord, Fleet
from .jobs import BackupJobs, JobView
from .proc import PGBACKREST, Runner

# Local clusters have one posix repo.
REPOS = ("repo1",)


class Backrest:
    """pgBackRest commands for the clusters of one fleet, run as the fleet's user."""

    def __init__(self, fleet: Fleet, runner: Runner) -> None:
        self.fleet = fleet
        self.runner = runner
        self.jobs = BackupJobs(fleet, runner)

    def command(self, record: ClusterRecord) -> list[str]:
        """pgbackrest with this cluster's config and stanza: never any system default."""
        return [PGBACKREST, f"--config={self.fleet.config_path(record.name)}", f"--stanza={STANZA}"]

    def setup_stanza(self, record: ClusterRecord) -> None:
        """stanza-create (idempotent), then check: archiving works end to end."""
        base = self.command(record)
        self.runner.run([*base, "stanza-create"], what="pgbackrest stanza-create")
        self.runner.run([*base, "check"], what="pgbackrest check")

    # -- inventory -----------------------------------------------------------------------

    def info(self, record: ClusterRecord) -> pgbackrest.StanzaInfo | None:
        """The parsed `info` of the cluster's stanza, None if pgBackRest knows none."""
        argv = [*self.command(record), "info", "--output=json"]
        proc = self.runner.run(argv, what="pgbackrest info", timeout=60)
        try:
            stanzas = pgbackrest.parse_info(json.loads(proc.stdout))
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(
                f"Unreadable pgbackrest info output: {exc}", detail=proc.stdout
            ) from exc
        return next((s for s in stanzas if s.name == STANZA), None)

    def inventories(self, record: ClusterRecord) -> list[RepoInventory]:
        stanza = self.info(record)
        if stanza is None:
            return []
        return [
            RepoInventory(
                name=repo.name,
                kind="posix",
                status_code=repo.status_code,
                status_message=repo.status_message,
                backups=repo.backups,
                window=pgbackrest.recoverable_window(
                    repo, latest_archived_at=self._archived_at(record, repo)),
                # pgBackRest reports the backup lock per stanza; the repos share it.
                backup_running=stanza.backup_running,
            )
            for repo in stanza.repos
        ]

    def set_databases(self, record: ClusterRecord, *, repo: str, label: str) -> list[str]:
        """The databases backup set `label` holds (`info --set` → database-ref), without
        postgres, template0 and template1, sorted. PermanentError for an unknown set."""
        check_repo(record, repo)
        if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
            raise PermanentError(f"{label!r} is not a backup set label.")
        argv = [
            *self.command(record),
            "info",
            f"--set={label}",
            f"--repo={pgbackrest.repo_index(repo)}",
            "--output=json",
        ]
        proc = self.runner.run(argv, what="pgbackrest info --set", timeout=60)
        try:
            stanza = next((s for s in json.loads(proc.stdout) if s.get("name") == STANZA), {})
            backups = [b for b in stanza.get("backup") or () if b.get("label") == label]
            names = {str(ref["name"]) for b in backups for ref in b.get("database-ref") or ()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransientError(
                f"Unreadable pgbackrest info output: {exc}", detail=proc.stdout
            ) from exc
        if not backups:
            raise PermanentError(f"{record.name}'s {repo} has no backup set {label}.")
        return sorted(names - SYSTEM_DATABASES)

    def _archived_at(self, record: ClusterRecord, repo: pgbackrest.RepoInfo) -> dt.datetime | None:
        """When the repo's newest WAL segment was archived: its mtime in the repo. `info`
        has no archive timestamps, so list the segment's timeline directory."""
        if not repo.archive_max:
            return None
        # repo-ls takes a path relative to the repo root, and --repo picks the repo.
        path = f"archive/{STANZA}/{repo.archive_id}/{pgbackrest.wal_timeline_dir(repo.archive_max)}"
        argv = [*self.command(record), f"--repo={repo.key}", "repo-ls", "--output=json", path]
        proc = self.runner.run(argv, what="pgbackrest repo-ls", timeout=60)
        return pgbackrest.newest_archived_time(json.loads(proc.stdout), repo.archive_max)

    # -- backups -------------------------------------------------------------------------

    def backup_start(
        self, record: ClusterRecord, *, repo: str, backup_type: BackupType, operation_id: str
    ) -> Applied:
        """Launch the backup in the background and return at once. Idempotent per
        operation_id: a repeated call returns the first call's Applied."""
        # Validates type, repo name and operation id (also used as a file name) first.
        options = pgbackrest.backup_options(repo=repo, backup_type=backup_type,
                                            operation_id=operation_id)
        check_repo(record, repo)
        argv = [*self.command(record), *options, "backup"]
        kind = {"full": "full", "diff": "differential", "incr": "incremental"}[backup_type]
        summary = f"Started pgBackRest: {kind} backup of {record.name} into {repo}."
        return self.jobs.start(record.name, operation_id, argv, summary)

    def backup_status(self, record: ClusterRecord, *, repo: str, operation_id: str) -> JobStatus:
        """Decide from the job's files (and, when they cannot, the repo's annotations)."""
        check_repo(record, repo)
        view = self.jobs.view(record.name, operation_id)
        if view is None or view.record is None or (view.rc is None and not view.record.pid):
            return JobStatus("pending", "The backup has not been launched yet.")
        if view.rc is None and view.alive:
            return JobStatus("running", f"pgBackRest is running (pid {view.record.pid}).")
        if view.rc not in (None, 0):
            explained = (pgbackrest.explain_error(view.log)
                         or f"pgBackRest exited with code {view.rc}.")
            return _failed(view, explained)
        # rc 0, or the process is gone without an rc (killed): the repo has the last word.
        backup = self.find_backup(record, repo, operation_id)
        if backup is not None:
            message = f"Backup {backup.label} is complete."
            return JobStatus("succeeded", message, {"label": backup.label})
        if view.rc == 0:
            return _failed(
                view,
                "pgBackRest reported success, but no backup set in the repo carries this "
                "operation's annotation.",
            )
        return _failed(view, "The backup process ended without reporting a result.")

    def find_backup(self, record: ClusterRecord, repo: str, operation_id: str) -> Backup | None:
        stanza = self.info(record)
        found = stanza.repo(repo) if stanza else None
        return pgbackrest.backup_for_operation(found.backups, operation_id) if found else None


def check_repo(record: ClusterRecord, repo: str) -> None:
    """PermanentError unless `repo` is a repo this cluster has."""
    pgbackrest.repo_index(repo)  # PermanentError for names that are not repo1..repo4
    if repo not in REPOS:
        raise PermanentError(
            f"{record.name} has no {repo}; local clusters have {', '.join(REPOS)}."
        )


def _failed(view: JobView, message: str) -> JobStatus:
    return JobStatus("failed", message, detail=view.log[-4000:])
