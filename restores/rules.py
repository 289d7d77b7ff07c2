"""Pure rules of a restore: is a point reachable from a repo, and from which backup set.

No Django, no I/O: the services pass in what the inventory knows, and the reconcile step
passes in what the platform reports just before the restore.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from restores.platforms.targets import RestoreTarget

# Within this of a backup's end, restoring that set with "immediate" reaches the same point
# without replaying WAL.
NEAR_BACKUP_END = dt.timedelta(seconds=10)
WAL_SEGMENT_BYTES = 16 * 1024 * 1024

NO_WINDOW = "{repo} has no usable backup yet: nothing can be restored from it."
TIME_IN_FUTURE = "{when} is in the future. Pick a time that has passed, or 'latest'."
TIME_BEFORE_WINDOW = (
    "{when} is before the recoverable window of {repo}: its oldest usable backup ends at "
    "{earliest}. Pick a later time."
)
TIME_AFTER_WINDOW = (
    "{when} is after the last archived WAL of {repo}: the latest reachable time is {latest}. "
    "Pick an earlier time, or 'latest'."
)
LSN_BEFORE_WINDOW = (
    "LSN {lsn} is before the recoverable window of {repo}: its oldest usable backup ends at "
    "LSN {earliest}."
)
LSN_AFTER_WINDOW = (
    "LSN {lsn} is after the last archived WAL of {repo} (segment {segment} ends at LSN "
    "{latest}). Pick an earlier LSN, or 'latest'."
)
SET_UNKNOWN = "{repo} has no backup set {label}."
SET_HAS_ERRORS = "Backup set {label} has page checksum errors; pick another set."
TARGET_BEFORE_SET_END = (
    "With backup set {label} the target must be after that backup ends ({end}): a restore "
    "cannot stop before its backup is consistent."
)
SUGGEST_IMMEDIATE = (
    "The target is within {seconds} s of the end of backup {label}: restoring that set with "
    "'immediate' reaches the same point without replaying WAL."
)
XID_UNCHECKED = (
    "The console cannot check a transaction id against the window: if xid {xid} is not in the "
    "archived WAL, the restore fails at the end of recovery."
)
NAME_UNCHECKED = (
    "The console cannot check a restore point name against the window: if '{name}' was not "
    "created (pg_create_restore_point) and archived, the restore fails at the end of recovery."
)


@dataclasses.dataclass(frozen=True)
class BackupPoint:
    label: str
    stopped_at: dt.datetime
    lsn_stop: str
    error: bool = False


@dataclasses.dataclass(frozen=True)
class Window:
    repo: str
    earliest: dt.datetime | None
    latest: dt.datetime | None
    latest_wal: str
    backups: Sequence[BackupPoint]  # usable or not, oldest first


@dataclasses.dataclass(frozen=True)
class Verdict:
    """`errors` are (field, message) pairs that refuse the point; `warnings` are said but
    allowed; `base` is the backup set the restore will start from."""

    errors: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    suggestion: str = ""
    base: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def segment_end_lsn(segment: str) -> int:
    """The first LSN after a WAL segment (16 MiB segments): TTTTTTTT LLLLLLLL SSSSSSSS."""
    log, seg = int(segment[8:16], 16), int(segment[16:24], 16)
    return (log << 32) + (seg + 1) * WAL_SEGMENT_BYTES


def _fmt(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _base_for_time(usable: Sequence[BackupPoint], when: dt.datetime) -> BackupPoint | None:
    # pgBackRest picks the newest set whose (whole-second) stop time is strictly before.
    before = [b for b in usable if b.stopped_at < when]
    return before[-1] if before else None


def check_point(point: RestoreTarget, window: Window, *, now: dt.datetime) -> Verdict:
    """Whether `point` can be reached from the repo described by `window`."""
    usable = [b for b in window.backups if not b.error]
    if not usable or window.earliest is None:
        return Verdict(errors=(("kind", NO_WINDOW.format(repo=window.repo)),))
    chosen: BackupPoint | None = None
    if point.label:
        chosen = next((b for b in window.backups if b.label == point.label), None)
        if chosen is None:
            return Verdict(errors=(("label", SET_UNKNOWN.format(repo=window.repo,
                                                                label=point.label)),))
        if chosen.error:
            return Verdict(errors=(("label", SET_HAS_ERRORS.format(label=point.label)),))
    if point.kind == "time":
        return _check_time(point, window, usable, chosen, now=now)
    if point.kind == "lsn":
        return _check_lsn(point, window, usable, chosen)
    base = chosen or usable[-1]
    if point.kind == "xid":
        return Verdict(warnings=(XID_UNCHECKED.format(xid=point.xid),), base=base.label)
    if point.kind == "name":
        return Verdict(warnings=(NAME_UNCHECKED.format(name=point.name),), base=base.label)
    return Verdict(base=base.label)  # latest, set, immediate


def _check_time(point: RestoreTarget, window: Window, usable: Sequence[BackupPoint],
                chosen: BackupPoint | None, *, now: dt.datetime) -> Verdict:
    assert point.time is not None
    when, repo = point.time, window.repo
    if when > now:
        return Verdict(errors=(("time", TIME_IN_FUTURE.format(when=_fmt(when))),))
    if when < window.earliest:  # type: ignore[operator]
        return Verdict(errors=(("time", TIME_BEFORE_WINDOW.format(
            when=_fmt(when), repo=repo, earliest=_fmt(window.earliest))),))  # type: ignore[arg-type]
    if window.latest is not None and when > window.latest:
        return Verdict(errors=(("time", TIME_AFTER_WINDOW.format(
            when=_fmt(when), repo=repo, latest=_fmt(window.latest))),))
    if chosen is not None and when <= chosen.stopped_at:
        return Verdict(errors=(("time", TARGET_BEFORE_SET_END.format(
            label=chosen.label, end=_fmt(chosen.stopped_at))),))
    base = chosen or _base_for_time(usable, when)
    assert base is not None  # when >= earliest = the oldest usable backup's end
    suggestion = ""
    if when - base.stopped_at <= NEAR_BACKUP_END:
        seconds = int((when - base.stopped_at).total_seconds())
        suggestion = SUGGEST_IMMEDIATE.format(seconds=seconds, label=base.label)
    return Verdict(base=base.label, suggestion=suggestion)


def _check_lsn(point: RestoreTarget, window: Window, usable: Sequence[BackupPoint],
               chosen: BackupPoint | None) -> Verdict:
    assert point.lsn is not None
    target = lsn_value(point.lsn)
    stops = [b for b in usable if b.lsn_stop]
    if stops and target < lsn_value(stops[0].lsn_stop):
        return Verdict(errors=(("lsn", LSN_BEFORE_WINDOW.format(
            lsn=point.lsn, repo=window.repo, earliest=stops[0].lsn_stop)),))
    if window.latest_wal:
        end = segment_end_lsn(window.latest_wal)
        if target > end:
            return Verdict(errors=(("lsn", LSN_AFTER_WINDOW.format(
                lsn=point.lsn, repo=window.repo, segment=window.latest_wal,
                latest=lsn_text(end))),))
    if chosen is not None and chosen.lsn_stop and target < lsn_value(chosen.lsn_stop):
        return Verdict(errors=(("lsn", TARGET_BEFORE_SET_END.format(
            label=chosen.label, end=f"LSN {chosen.lsn_stop}")),))
    before = [b for b in stops if lsn_value(b.lsn_stop) <= target]
    base = chosen or (before[-1] if before else usable[-1])
    return Verdict(base=base.label)
