"""Where a restore stops: the RestoreTarget every layer shares (forms build it, services
check it against the window, builders turn it into options, platforms run it), and its one
JSON form, as operations and drafts store it.

Pure: no Django, no I/O. The builders (restore_options, manifests) and the platforms' base
both import it; it imports only the errors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Literal

from .errors import PermanentError

TargetKind = Literal["latest", "set", "time", "lsn", "xid", "name", "immediate"]
TARGET_KINDS: tuple[TargetKind, ...] = ("latest", "set", "time", "lsn", "xid", "name", "immediate")
# The field each kind needs; kinds not listed need none.
_KIND_FIELD = {"set": "label", "time": "time", "lsn": "lsn", "xid": "xid", "name": "name"}
# pgBackRest: --target-exclusive only with --type=time, xid or lsn.
EXCLUSIVE_KINDS = ("time", "xid", "lsn")

XID_MAX = 2**64 - 1  # PostgreSQL 13+ accepts an epoch-qualified (64-bit) xid
LABEL_RE = re.compile(r"[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?", re.ASCII)
LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}", re.ASCII)
RESTORE_POINT_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9 _.:+-]{0,61}[A-Za-z0-9_.:+-])?", re.ASCII)
UNKNOWN_KIND = "Unknown restore target: choose latest, set, time, lsn, xid, name or immediate."
TARGET_MISSING = "A restore to a {kind} target needs its value."
TARGET_EXTRA = "Only the value of the chosen target kind may be given (got {field} for {kind})."
TIME_NAIVE = "The target time needs an explicit UTC offset (a time zone)."
TIME_OFFSET_SECONDS = "The target time's UTC offset must be a whole number of minutes."
LSN_INVALID = "An LSN looks like 0/3000060: two hexadecimal numbers separated by '/'."
XID_INVALID = "A transaction id (xid) must be a positive integer."
NAME_INVALID = (
    "A restore point name is 1 to 63 characters: letters, digits, spaces and . _ : + -, "
    "starting with a letter, digit or _ and not ending with a space."
)
LABEL_INVALID = (
    "A backup set label looks like 20261124-213840F, or 20261124-213840F_20261124-213940I "
    "for a differential (D) or incremental (I) backup."
)
EXCLUSIVE_NOT_ALLOWED = "Only time, xid and LSN targets can stop just before the target."

class InvalidRestoreOptions(PermanentError):
    """A restore target or option a DBA must correct; retrying cannot help."""


@dataclasses.dataclass(frozen=True)
class RestoreTarget:
    """Where a restore stops. `label` picks the backup set to start from (for `set`: the set
    to restore, stopping as soon as it is consistent)."""

    kind: TargetKind = "latest"
    time: dt.datetime | None = None
    lsn: str | None = None
    xid: int | None = None
    name: str | None = None
    label: str | None = None
    exclusive: bool = False

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise InvalidRestoreOptions(UNKNOWN_KIND)
        needed = _KIND_FIELD.get(self.kind)
        for field in ("time", "lsn", "xid", "name"):
            if field != needed and getattr(self, field) is not None:
                raise InvalidRestoreOptions(TARGET_EXTRA.format(field=field, kind=self.kind))
        if needed and getattr(self, needed) is None:
            raise InvalidRestoreOptions(TARGET_MISSING.format(kind=self.kind))
        if self.label is not None and not full_match(LABEL_RE, self.label):
            raise InvalidRestoreOptions(LABEL_INVALID)
        if self.time is not None:
            time_text(self.time)
        if self.lsn is not None and not full_match(LSN_RE, self.lsn):
            raise InvalidRestoreOptions(LSN_INVALID)
        if self.xid is not None and (
            type(self.xid) is not int or not 0 < self.xid <= XID_MAX  # bool is not an xid
        ):
            raise InvalidRestoreOptions(XID_INVALID)
        if self.name is not None and not full_match(RESTORE_POINT_RE, self.name):
            raise InvalidRestoreOptions(NAME_INVALID)
        if self.exclusive is not False and (
            self.exclusive is not True or self.kind not in EXCLUSIVE_KINDS
        ):
            raise InvalidRestoreOptions(EXCLUSIVE_NOT_ALLOWED)


def full_match(pattern: re.Pattern[str], text: object) -> bool:
    return isinstance(text, str) and pattern.fullmatch(text) is not None


def time_text(when: object) -> str:
    """pgBackRest's `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM]`, in the datetime's own offset."""
    if not isinstance(when, dt.datetime):
        raise InvalidRestoreOptions(TIME_NAIVE)
    offset = when.utcoffset()
    if offset is None:
        raise InvalidRestoreOptions(TIME_NAIVE)
    seconds = int(offset.total_seconds())
    if seconds % 60 or offset.microseconds:
        raise InvalidRestoreOptions(TIME_OFFSET_SECONDS)
    sign, minutes = ("-" if seconds < 0 else "+"), abs(seconds) // 60
    zone = f"{sign}{minutes // 60:02d}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    fraction = f".{when.microsecond:06d}".rstrip("0") if when.microsecond else ""
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}{fraction}{zone}"
    )




def target_to_json(point: RestoreTarget) -> dict[str, Any]:
    """The stored form: every field, empty strings for the unset ones."""
    return {
        "kind": point.kind, "time": point.time.isoformat() if point.time else "",
        "lsn": point.lsn or "", "xid": str(point.xid) if point.xid else "",
        "name": point.name or "", "label": point.label or "", "exclusive": point.exclusive,
    }


def target_from_json(data: dict[str, Any]) -> RestoreTarget:
    """A stored target (also an older, shorter one: absent fields are unset) back."""
    return RestoreTarget(
        kind=data.get("kind") or "latest",
        time=dt.datetime.fromisoformat(data["time"]) if data.get("time") else None,
        lsn=data.get("lsn") or None,
        xid=int(data["xid"]) if data.get("xid") else None,
        name=data.get("name") or None,
        label=data.get("label") or None,
        exclusive=bool(data.get("exclusive")),
    )
