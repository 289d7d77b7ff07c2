"""Backups on PGO clusters: the inventory through `pgbackrest info` in the leader pod (as
`kubectl pgo show backup` does, §11), and manual backups through spec + annotation (§3.1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from typing import Any

from .. import pgbackrest
from ..base import (
    Applied,
    BackupType,
    ClusterRef,
    JobStatus,
    PermanentError,
    RepoInventory,
    TransientError,
)
from ..manifests import BACKUP_ANNOTATION, manual_backup_patch
from ..restore_options import SYSTEM_DATABASES
from ..targets import LABEL_RE
from . import state
from .core import KubeCore

STANZA = "db"  # PGO always names the stanza db (§3.1)
CONTAINER = "database"

NO_POD = "{name} has no running leader pod to ask pgBackRest (it is shut down or starting)."
CACHED = "{message} (cached {when:%Y-%m-%d %H:%M:%S} UTC: {name} has no running pod)"
INFO_FAILED = "pgbackrest info failed in {pod}: {error}"
UNREADABLE = "Unreadable pgbackrest info output from {pod}: {error}"
NO_REPO = "{name} has no repo {repo}; its repos are {repos}."
NO_SET = "{name}'s {repo} has no backup set {label}."
BAD_LABEL = "{label!r} is not a backup set label."
ON_STANDBY = (
    "{name} is a standby: PGO runs manual backups only on a writable primary and would leave "
    "this request pending forever. Back up its primary instead."
)
ANOTHER_RUNNING = "Another manual backup ({other}) is still running on {name}; waiting for it."
REQUESTED = "Asked PGO for a {kind} backup of {name} into {repo} (annotation {key}={id})."
ALREADY = "PGO was already asked for this backup of {name} (annotation {key}={id})."
SUPERSEDED = (
    "Another backup request ({other}) replaced this one on {name} before PGO started it. "
    "Fix: start a new backup."
)
WAITING = "Waiting for PGO to start the backup Job ({why})."
STUCK = (
    "PGO has not started the backup after {seconds:.0f} s ({why}). Fix: {fix}"
)
BACKUP_FAILED = "The backup Job failed ({failed} failed pod(s)); see `kubectl -n {ns} logs "
BACKUP_RUNNING = "PGO's backup Job is running."
BACKUP_DONE = "Backup {label} is complete."
KINDS = {"full": "full", "diff": "differential", "incr": "incremental"}


@dataclasses.dataclass(frozen=True)
class _Cached:
    at: dt.datetime
    repos: tuple[RepoInventory, ...]


class BackupsMixin(KubeCore):
    _cache: dict[ClusterRef, _Cached]
    _cache_lock: threading.Lock

    # -- pgbackrest in the leader pod ------------------------------------------------------

    def listed(self, ref: ClusterRef) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        return None  # the platform keeps what its last clusters() listed

    def _leader_name(self, ref: ClusterRef,
                     pods: list[dict[str, Any]] | None = None) -> str | None:
        if pods is None:
            selector = f"{state.CLUSTER_LABEL}={ref.name},{state.PFX}data=postgres,"
            pods = self.kube.list_pods(ref.namespace, selector + state.LEADER_SELECTOR)
        return state.running_leader(pods)

    def _pgbackrest(self, ref: ClusterRef, pod: str, *args: str) -> tuple[int, str, str]:
        return self.kube.exec(ref.namespace, pod, CONTAINER, ["pgbackrest", *args])

    def _info(self, ref: ClusterRef, pod: str, *args: str) -> dict[str, Any]:
        code, out, err = self._pgbackrest(ref, pod, "info", "--output=json", *args)
        if code != 0:
            error = pgbackrest.explain_error(err) or err.strip() or f"exit code {code}"
            raise TransientError(INFO_FAILED.format(pod=pod, error=error), detail=err)
        try:
            stanzas = json.loads(out)
            return next(s for s in stanzas if s.get("name") == STANZA)
        except (ValueError, StopIteration, TypeError, AttributeError) as exc:
            raise TransientError(UNREADABLE.format(pod=pod, error=exc), detail=out) from exc

    def repos(self, ref: ClusterRef) -> list[RepoInventory]:
        """pgBackRest's view of each repo. A cluster without a running leader (shut down)
        gets the last answer, its status message marked as cached."""
        listed = self.listed(ref)
        obj = listed[0] if listed else self.cluster(ref)
        kinds = state.repo_kinds(obj)
        if not kinds:  # no spec.backups (optional since 5.7): nothing to ask pgBackRest
            return []
        pod = self._leader_name(ref, listed[1] if listed else None)
        if pod is None:
            with self._cache_lock:
                cached = self._cache.get(ref)
            if cached is None:
                raise TransientError(NO_POD.format(name=ref.name))
            return [
                dataclasses.replace(r, status_message=CACHED.format(
                    message=r.status_message, when=cached.at, name=ref.name))
                for r in cached.repos
            ]
        stanza = pgbackrest.parse_info([self._info(ref, pod)])[0]
        found = [
            RepoInventory(
                name=repo.name,
                kind=kinds.get(repo.name, "posix"),
                status_code=repo.status_code,
                status_message=repo.status_message,
                backups=repo.backups,
                window=pgbackrest.recoverable_window(
                    repo, latest_archived_at=self._archived_at(ref, pod, repo)),
                backup_running=stanza.backup_running,
            )
            for repo in stanza.repos
        ]
        with self._cache_lock:
            self._cache[ref] = _Cached(self.now().astimezone(dt.UTC), tuple(found))
        return found

    def _archived_at(self, ref: ClusterRef, pod: str,
                     repo: pgbackrest.RepoInfo) -> dt.datetime | None:
        """When the newest WAL segment reached the repo (`repo-ls` of its timeline dir, which
        pgBackRest forwards to the repo host). None when it cannot tell: the window then ends
        at the newest backup's stop, a safe lower bound."""
        if not repo.archive_max:
            return None
        path = f"archive/{STANZA}/{repo.archive_id}/{pgbackrest.wal_timeline_dir(repo.archive_max)}"
        code, out, _ = self._pgbackrest(
            ref, pod, f"--stanza={STANZA}", f"--repo={repo.key}", "repo-ls", "--output=json", path
        )
        try:
            if code != 0:
                return None
            return pgbackrest.newest_archived_time(json.loads(out), repo.archive_max)
        except (ValueError, TypeError, AttributeError):
            return None

    def backup_databases(self, ref: ClusterRef, *, repo: str, label: str) -> list[str]:
        obj = self.cluster(ref)
        if repo not in state.repo_names(obj):
            raise PermanentError(NO_REPO.format(name=ref.name, repo=repo,
                                                repos=", ".join(state.repo_names(obj))))
        if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
            raise PermanentError(BAD_LABEL.format(label=label))
        pod = self._leader_name(ref)
        if pod is None:
            raise TransientError(NO_POD.format(name=ref.name))
        stanza = self._info(ref, pod, f"--set={label}", f"--repo={pgbackrest.repo_index(repo)}")
        sets = [b for b in stanza.get("backup") or () if b.get("label") == label]
        if not sets:
            raise PermanentError(NO_SET.format(name=ref.name, repo=repo, label=label))
        names = {str(d["name"]) for b in sets for d in b.get("database-ref") or ()}
        return sorted(names - SYSTEM_DATABASES)

    # -- manual backups ----------------------------------------------------------------------

    def backup_start(
        self, ref: ClusterRef, *, repo: str, backup_type: BackupType, operation_id: str
    ) -> Applied:
        """spec.backups.pgbackrest.manual and the trigger annotation (= operation_id) in ONE
        conditional merge patch; nothing at all when the annotation already holds the id."""
        options = [f"--type={backup_type}",
                   f"--annotation={pgbackrest.OPERATION_ANNOTATION}={operation_id}"]
        if backup_type not in KINDS:
            raise PermanentError(f"{backup_type!r} is not a backup type (full, diff or incr).")
        patch_body = manual_backup_patch(repo, options, operation_id)  # validates everything
        key = BACKUP_ANNOTATION

        def decide(obj: dict[str, Any]) -> dict[str, Any] | None:
            if state.annotations(obj).get(key) == operation_id:
                return None
            self._check_can_back_up(ref, obj, repo)
            manual = state.pgbackrest_status(obj).get("manualBackup") or {}
            if manual.get("id") and not manual.get("finished"):
                raise TransientError(ANOTHER_RUNNING.format(other=manual["id"], name=ref.name))
            body = json.loads(json.dumps(patch_body))
            body["metadata"]["annotations"].update(self.stamp("backup", operation_id))
            return body

        _, sent = self.patch_fresh(ref, decide)
        words = {"name": ref.name, "key": key, "id": operation_id}
        if not sent:
            return Applied(ALREADY.format(**words))
        summary = REQUESTED.format(kind=KINDS[backup_type], repo=repo, **words)
        return Applied(summary, command=_annotate_command(ref, repo, options, operation_id))

    def _check_can_back_up(self, ref: ClusterRef, obj: dict[str, Any], repo: str) -> None:
        if repo not in state.repo_names(obj):
            raise PermanentError(NO_REPO.format(name=ref.name, repo=repo,
                                                repos=", ".join(state.repo_names(obj))))
        standby = state.standby_in_spec(obj) or any(
            state.patroni_role(p) == "standby_leader" for p in self.leaders(ref)
        )
        if standby:
            raise PermanentError(ON_STANDBY.format(name=ref.name))

    def backup_status(self, ref: ClusterRef, *, repo: str, operation_id: str) -> JobStatus:
        """§9: done when status.pgbackrest.manualBackup.id == the id and finished."""
        obj = self.cluster(ref)
        manual = state.pgbackrest_status(obj).get("manualBackup") or {}
        pending = state.annotations(obj).get(BACKUP_ANNOTATION, "")
        if manual.get("id") == operation_id:
            if not manual.get("finished"):
                return JobStatus("running", BACKUP_RUNNING)
            if (manual.get("failed") or 0) > 0 or state.is_false(
                obj, "PGBackRestManualBackupSuccessful"
            ):
                return self._backup_failed(ref, manual)
            return self._backup_done(ref, repo, operation_id)
        if pending != operation_id:
            return JobStatus("failed", SUPERSEDED.format(other=pending or "none", name=ref.name))
        why, fix = self._backup_gate(ref, obj, repo)
        if self.is_stuck(obj, "backup", operation_id):
            seconds = self.waited(obj, "backup", operation_id) or 0.0
            return JobStatus("failed", STUCK.format(seconds=seconds, why=why, fix=fix), detail=fix)
        return JobStatus("pending", WAITING.format(why=why))

    def _backup_gate(self, ref: ClusterRef, obj: dict[str, Any], repo: str) -> tuple[str, str]:
        """Why PGO may not have started the Job yet (§3.1 gates, §9), and what fixes it."""
        events = self.events(ref)
        if event := state.newest_event(events, state.BACKUP_EVENTS):
            return f"PGO: {event.get('reason')}: {event.get('message')}", (
                "correct the repo or options named in the event, then start a new backup."
            )
        if obj.get("spec", {}).get("paused") or state.is_false(obj, "Progressing", "Paused"):
            return "PGO is paused for this cluster", "resume the cluster (spec.paused: false)."
        if not state.is_true(obj, "PGBackRestReplicaCreate"):
            return "the first backup (replica-create) has not finished", (
                "wait for PGBackRestReplicaCreate=True; check the replica-create Job's log."
            )
        if not any(state.leader_is_writable(p) for p in self.leaders(ref)):
            return "no writable primary is running", "start the cluster, then back up again."
        return "PGO has not picked up the annotation", (
            "check that PGO is running and watching this namespace (its logs), then start "
            "a new backup."
        )

    def _backup_failed(self, ref: ClusterRef, manual: dict[str, Any]) -> JobStatus:
        jobs = self.kube.list_workloads(
            ref.namespace, "jobs", f"{state.CLUSTER_LABEL}={ref.name},{state.PFX}"
            "pgbackrest-backup=manual",
        )
        names = [j["metadata"]["name"] for j in jobs]
        where = f"job/{names[-1]}" if names else "the backup Job"
        message = BACKUP_FAILED.format(failed=manual.get("failed") or 1, ns=ref.namespace)
        return JobStatus("failed", message + f"{where}` for pgBackRest's error.")

    def _backup_done(self, ref: ClusterRef, repo: str, operation_id: str) -> JobStatus:
        label = ""
        try:  # the set carries the operation's annotation (--annotation in manual.options)
            pod = self._leader_name(ref)
            stanza = pgbackrest.parse_info([self._info(ref, pod)])[0] if pod else None
            found = stanza.repo(repo) if stanza else None
            backup = pgbackrest.backup_for_operation(found.backups, operation_id) if found else None
            label = backup.label if backup else ""
        except (TransientError, PermanentError):
            pass  # the Job succeeded; the next inventory sync lists the set
        return JobStatus("succeeded", BACKUP_DONE.format(label=label or "(label unknown)"),
                         {"label": label} if label else {})


def _annotate_command(ref: ClusterRef, repo: str, options: list[str], trigger: str) -> str:
    patch = json.dumps(manual_backup_patch(repo, options, trigger), separators=(",", ":"))
    return (f"kubectl -n {ref.namespace} patch postgrescluster {ref.name} --type=merge "
            f"--field-manager=dr-console -p '{patch}'")
