"""Pure pgBackRest helpers: option lists for commands, and parsing of `info --output=json`.

No I/O here. Platforms run the commands; these functions decide what to run and what the
answers mean.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import PermanentError
from .facts import BACKUP_TYPES, Backup, BackupType, RecoverableWindow

# The annotation key that ties a backup set to the console operation that asked for it.
OPERATION_ANNOTATION = "dr-console-operation"

REPO_NAME_RE = re.compile(r"^repo([1-4])$")
WAL_SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
# Annotation values are our own ids, but keep them to a conservative alphabet anyway.
ANNOTATION_VALUE_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def repo_index(repo: str) -> int:
    """`repo1` → 1. pgBackRest supports repo1..repo4."""
    match = REPO_NAME_RE.match(repo)
    if not match:
        raise PermanentError(f"{repo!r} is not a pgBackRest repo name (repo1 to repo4).")
    return int(match.group(1))


def backup_options(*, repo: str, backup_type: str, operation_id: str) -> list[str]:
    """The options of a `pgbackrest backup` for one operation, validated."""
    if backup_type not in BACKUP_TYPES:
        raise PermanentError(f"{backup_type!r} is not a backup type (full, diff or incr).")
    if not ANNOTATION_VALUE_RE.match(operation_id):
        raise PermanentError(f"{operation_id!r} cannot be used as a backup annotation.")
    return [
        f"--repo={repo_index(repo)}",
        f"--type={backup_type}",
        f"--annotation={OPERATION_ANNOTATION}={operation_id}",
    ]


@dataclasses.dataclass(frozen=True)
class RepoInfo:
    """One repo of one stanza, from `info`."""

    key: int
    status_code: int
    status_message: str
    backups: tuple[Backup, ...]
    archive_min: str  # oldest WAL segment in the repo ("" when none)
    archive_max: str  # newest WAL segment in the repo ("" when none)
    archive_id: str  # "15-1" for the newest db-history id with WAL ("" when none)

    @property
    def name(self) -> str:
        return f"repo{self.key}"


@dataclasses.dataclass(frozen=True)
class StanzaInfo:
    name: str
    status_code: int
    status_message: str
    backup_running: bool
    repos: tuple[RepoInfo, ...]
    pg_version: str

    def repo(self, name: str) -> RepoInfo | None:
        return next((r for r in self.repos if r.name == name), None)


def _epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def _parse_backup(raw: Mapping[str, Any]) -> Backup:
    info = raw.get("info") or {}
    repository = info.get("repository") or {}
    archive = raw.get("archive") or {}
    lsn = raw.get("lsn") or {}
    annotation = raw.get("annotation") or {}
    backup_type = raw["type"]
    if backup_type not in BACKUP_TYPES:
        raise ValueError(f"unknown backup type {backup_type!r}")
    return Backup(
        repo=f"repo{int(raw['database']['repo-key'])}",
        label=str(raw["label"]),
        type=backup_type,
        started_at=_epoch(raw["timestamp"]["start"]),
        stopped_at=_epoch(raw["timestamp"]["stop"]),
        database_size=int(info.get("size") or 0),
        delta_size=int(info.get("delta") or 0),
        repo_size=int(repository.get("size") or 0),
        repo_delta=int(repository.get("delta") or 0),
        wal_start=str(archive.get("start") or ""),
        wal_stop=str(archive.get("stop") or ""),
        lsn_start=str(lsn.get("start") or ""),
        lsn_stop=str(lsn.get("stop") or ""),
        prior=raw.get("prior"),
        references=tuple(raw.get("reference") or ()),
        error=bool(raw.get("error")),
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotation.items())),
        db_id=int(raw["database"]["id"]),
    )


def _parse_stanza(raw: Mapping[str, Any]) -> StanzaInfo:
    backups = [_parse_backup(b) for b in raw.get("backup") or ()]
    archives: dict[int, list[Mapping[str, Any]]] = {}
    for entry in raw.get("archive") or ():
        archives.setdefault(int(entry["database"]["repo-key"]), []).append(entry)
    repos = []
    for repo in raw.get("repo") or ():
        key = int(repo["key"])
        entries = [e for e in archives.get(key, []) if e.get("min") and e.get("max")]
        # Segment names sort by timeline then position, so min/max over names is correct
        # across db-history ids and timelines.
        newest = max(entries, key=lambda e: e["max"], default=None)
        repos.append(
            RepoInfo(
                key=key,
                status_code=int(repo["status"]["code"]),
                status_message=str(repo["status"]["message"]),
                backups=tuple(
                    sorted(
                        (b for b in backups if b.repo == f"repo{key}"),
                        key=lambda b: (b.stopped_at, b.label),
                    )
                ),
                archive_min=min((e["min"] for e in entries), default=""),
                archive_max=newest["max"] if newest else "",
                archive_id=str(newest["id"]) if newest else "",
            )
        )
    versions = [str(db.get("version", "")) for db in raw.get("db") or ()]
    status = raw.get("status") or {}
    lock = ((status.get("lock") or {}).get("backup") or {}).get("held", False)
    return StanzaInfo(
        name=str(raw["name"]),
        status_code=int(status.get("code", 99)),
        status_message=str(status.get("message", "")),
        backup_running=bool(lock),
        repos=tuple(sorted(repos, key=lambda r: r.key)),
        pg_version=versions[-1] if versions else "",
    )


def parse_info(data: Sequence[Mapping[str, Any]]) -> list[StanzaInfo]:
    """Parse the (already JSON-decoded) output of `pgbackrest info --output=json`."""
    return [_parse_stanza(stanza) for stanza in data]


STOP_RESOLUTION = dt.timedelta(seconds=1)


def usable_backups(repo: RepoInfo) -> list[Backup]:
    """Backups a PITR can start from: no page errors, and their WAL is still archived."""
    return [
        b
        for b in repo.backups
        if not b.error and (not repo.archive_min or b.wal_start >= repo.archive_min)
    ]


def recoverable_window(
    repo: RepoInfo, *, latest_archived_at: dt.datetime | None
) -> RecoverableWindow:
    """The span a restore from this repo can reach.

    earliest: just after the end of the oldest usable backup. latest: when the newest WAL
    segment was archived (`latest_archived_at`, read by the platform from the repo), never
    before the end of the newest backup.
    """
    usable = usable_backups(repo)
    if not usable:
        return RecoverableWindow(None, None, repo.archive_max, repo.archive_min)
    # pgBackRest keeps stop times in whole seconds and restores from a set whose stop time is
    # strictly before the target: the first reachable instant is one second after the stop.
    earliest = min(b.stopped_at for b in usable) + STOP_RESOLUTION
    newest_stop = max(b.stopped_at for b in usable) + STOP_RESOLUTION
    if latest_archived_at is not None:
        # The segment's time is in whole seconds too: it holds WAL up to the next second.
        latest_archived_at += STOP_RESOLUTION
    latest = max(latest_archived_at, newest_stop) if latest_archived_at else newest_stop
    return RecoverableWindow(earliest, latest, repo.archive_max, repo.archive_min)


def wal_timeline_dir(segment: str) -> str:
    """The archive subdirectory holding a segment: its first 16 hex digits."""
    if not WAL_SEGMENT_RE.match(segment):
        raise ValueError(f"{segment!r} is not a WAL segment name")
    return segment[:16]


def newest_archived_time(
    listing: Mapping[str, Mapping[str, Any]], segment: str
) -> dt.datetime | None:
    """From `repo-ls --output=json` of a timeline dir, when `segment` reached the repo."""
    times = [
        int(meta["time"])
        for name, meta in listing.items()
        if name.startswith(segment) and meta.get("type") == "file" and "time" in meta
    ]
    return _epoch(max(times)) if times else None


def backup_for_operation(backups: Iterable[Backup], operation_id: str) -> Backup | None:
    """The backup set a console operation produced, found by its annotation."""
    return next((b for b in backups if b.annotation(OPERATION_ANNOTATION) == operation_id), None)


# pgBackRest reports failures as `ERROR: [NNN]: text`, on stderr and, with a timestamp and
# process id prefix, in the console log.
ERROR_RE = re.compile(r"ERROR: \[(\d{3})\]: (.+)")

# Plain-words explanations for the error codes an operator meets most often.
_ERROR_EXPLANATIONS = {
    "050": "Another backup or expire of this cluster holds pgBackRest's lock; "
    "try again when it has finished.",
    "056": "pgBackRest could not reach a running primary: the cluster is stopped, "
    "starting, or in recovery.",
    "041": "pgBackRest could not read or write a file it needs (permissions).",
    "055": "A file pgBackRest needs is missing (configuration, repo or stanza).",
}


def error_line(output: str) -> str:
    """The first pgBackRest error in a command's output as `[NNN] text`, or ""."""
    match = ERROR_RE.search(output)
    return f"[{match.group(1)}] {match.group(2).strip()}" if match else ""


def explain_error(output: str) -> str:
    """A sentence for people about why a pgBackRest command failed, ending with the raw
    error line; "" when the output holds no pgBackRest error."""
    match = ERROR_RE.search(output)
    if not match:
        return ""
    code, raw = match.group(1), error_line(output)
    explanation = _ERROR_EXPLANATIONS.get(code)
    return f"{explanation} ({raw})" if explanation else f"pgBackRest failed: {raw}"


__all__ = [
    "OPERATION_ANNOTATION",
    "BackupType",
    "RepoInfo",
    "StanzaInfo",
    "backup_for_operation",
    "backup_options",
    "error_line",
    "explain_error",
    "newest_archived_time",
    "parse_info",
    "recoverable_window",
    "repo_index",
    "usable_backups",
    "wal_timeline_dir",
]
