"""Who did what: the append-only, hash-chained audit log.

`audit_record` writes one entry in the caller's transaction (so an action and its entry
commit or roll back together), chained to the entry before it: its hash covers its own
content and the previous hash. `chain_verify` walks the chain and names the first entry that
does not match; `manage.py audit_verify` runs it. Secrets never enter an entry: parameters
are scrubbed of anything named like a credential.

Who asked, and from where: a request's address comes from the middleware
(`request_address`), so services need not pass it; the console's own steps are "system".
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction

from restores.models.audit import AuditEntry
from restores.models.inventory import Cluster
from restores.models.operations import Operation
from restores.platforms.secrets import scrub

GENESIS = "0" * 64
SYSTEM = "system"

# What the log records; the Audit page filters by these.
LOGIN = "login"
LOGIN_FAILED = "login.failed"
LOGIN_LOCKED_OUT = "login.locked_out"
LOGOUT = "logout"
ACCESS_DENIED = "access.denied"
OPERATION_REQUESTED = "operation.requested"
OPERATION_APPROVED = "operation.approved"
OPERATION_REJECTED = "operation.rejected"
OPERATION_EXPIRED = "operation.expired"
OPERATION_CANCELLED = "operation.cancelled"
OPERATION_SUCCEEDED = "operation.succeeded"
OPERATION_FAILED = "operation.failed"
GRANT_CREATED = "grant.created"
GRANT_DELETED = "grant.deleted"
USER_CHANGED = "user.changed"
SETTINGS_CHANGED = "settings.changed"
DRILL_PLAN_CREATED = "drill_plan.created"
DRILL_PLAN_CHANGED = "drill_plan.changed"
DRILL_EVIDENCE_SEALED = "drill.evidence_sealed"
DRILL_REMEDIATION = "drill_run.remediation"
REPORT_PREPARED = "report.prepared"
REPORT_SIGNED = "report.signed"
ACTIONS = (
    LOGIN, LOGIN_FAILED, LOGIN_LOCKED_OUT, LOGOUT, ACCESS_DENIED, OPERATION_REQUESTED,
    OPERATION_APPROVED, OPERATION_REJECTED, OPERATION_EXPIRED, OPERATION_CANCELLED,
    OPERATION_SUCCEEDED, OPERATION_FAILED, GRANT_CREATED, GRANT_DELETED, USER_CHANGED,
    SETTINGS_CHANGED, DRILL_PLAN_CREATED, DRILL_PLAN_CHANGED, DRILL_EVIDENCE_SEALED,
    DRILL_REMEDIATION, REPORT_PREPARED, REPORT_SIGNED,
)
# A transaction-scoped PostgreSQL advisory lock: one append at a time, so each entry links to
# the newest one (SQLite's IMMEDIATE transactions already serialize writers).
_CHAIN_LOCK = 0x44524155  # "DRAU"

User = AbstractBaseUser | AnonymousUser | None

_address: contextvars.ContextVar[str] = contextvars.ContextVar("dr_audit_address", default="")


@contextlib.contextmanager
def request_address(address: str) -> Iterator[None]:
    """Entries recorded inside the block say they came from `address`."""
    token = _address.set(address)
    try:
        yield
    finally:
        _address.reset(token)


def _actor(user: User, actor_name: str | None) -> tuple[int | None, str]:
    if user is not None and user.is_authenticated:
        return user.pk, actor_name or user.get_username()
    if user is not None:  # anonymous: a failed login names the username it tried
        return None, actor_name or "anonymous"
    return None, actor_name or SYSTEM


def canonical(entry: AuditEntry) -> str:
    """The entry's content as the hash covers it: every column but the id and the hashes."""
    return json.dumps(
        {
            "at": entry.at.isoformat(),
            "actor": entry.actor_id,
            "actor_name": entry.actor_name,
            "address": entry.address,
            "action": entry.action,
            "cluster": entry.cluster_id,
            "platform": entry.platform,
            "namespace": entry.namespace,
            "cluster_name": entry.cluster_name,
            "operation": str(entry.operation_id) if entry.operation_id else None,
            "params": entry.params,
            "result": entry.result,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(entry)}".encode()).hexdigest()


def _json(value: Any) -> Any:
    """As the database will give it back (datetimes and UUIDs as text), secrets scrubbed."""
    return json.loads(json.dumps(scrub(value), default=str))


def audit_record(
    *,
    action: str,
    user: User = None,
    actor_name: str | None = None,
    cluster: Cluster | None = None,
    operation: Operation | None = None,
    params: dict[str, Any] | None = None,
    result: str = "",
    address: str | None = None,
) -> AuditEntry:
    """Append one entry, in the caller's transaction when there is one."""
    if cluster is None and operation is not None:
        cluster = operation.cluster
    actor_id, name = _actor(user, actor_name)
    entry = AuditEntry(
        actor_id=actor_id, actor_name=name[:150],
        address=(address if address is not None else _address.get())[:64],
        action=action, cluster=cluster,
        platform=cluster.platform if cluster else "",
        namespace=cluster.namespace if cluster else "",
        cluster_name=cluster.name if cluster else "",
        operation_id=operation.pk if operation is not None else None,
        params=_json(params or {}), result=result,
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        prev = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        entry.prev_hash = prev or GENESIS
        entry.hash = entry_hash(entry.prev_hash, entry)
        entry.save()
    return entry


def operation_params(op: Operation) -> dict[str, Any]:
    """What an operation's entries say about it: its kind, its parameters, who asked."""
    return {"kind": op.kind, "params": op.params,
            "requested_by": op.requested_by.get_username() if op.requested_by else SYSTEM}


# --- the console's own settings ---------------------------------------------------------------

# The settings that decide who may do what and how safe the console is: a change to one of
# them is an audit entry (the sweep compares them with the last one recorded).
AUDITED_SETTINGS = (
    "DEBUG", "DR_PLATFORMS", "DR_KUBE_NAMESPACES", "DR_TWO_PERSON_RULE", "DR_TWO_PERSON_KINDS",
    "DR_APPROVAL_TTL", "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME", "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "DR_TRUSTED_PROXY_COUNT", "ALLOWED_HOSTS", "DR_DRILL_CONCURRENCY", "DR_DRILL_START_WINDOW",
)


def settings_snapshot() -> dict[str, Any]:
    from django.conf import settings

    return _json({name: getattr(settings, name, None) for name in AUDITED_SETTINGS})


def settings_audit() -> bool:
    """Record the audited settings when they differ from the last recorded ones (the first
    time, and after a restart with other values). True when an entry was written."""
    now = settings_snapshot()
    last = (AuditEntry.objects.filter(action=SETTINGS_CHANGED, params__has_key="settings")
            .order_by("-id").values_list("params", flat=True).first())
    before = (last or {}).get("settings")
    if before == now:
        return False
    changed = sorted(k for k in now if (before or {}).get(k) != now[k])
    audit_record(action=SETTINGS_CHANGED, params={"settings": now, "before": before,
                                                  "changed": changed},
                 result=f"changed: {', '.join(changed)}" if before else "first recorded")
    return True


# --- verification ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChainCheck:
    """What a walk of the chain found: how many entries, the newest hash, and the first
    entry that does not match (None: the chain is intact)."""

    entries: int
    head: str
    broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


CHANGED = "entry #{id} was changed: its content no longer matches its hash."
LINK_BROKEN = (
    "entry #{id} does not follow entry #{prev}: an entry between them was deleted, or entry "
    "#{prev} was changed and its hash recomputed."
)
FIRST_BROKEN = (
    "entry #{id} is the first but does not start the chain: entries before it were deleted."
)
HEAD_MISSING = (
    "the chain no longer holds the head {head} noted earlier: entries were deleted from the "
    "end of the log, or changed and rehashed."
)


def chain_verify(*, head: str | None = None, chunk_size: int = 2000) -> ChainCheck:
    """Walk the log oldest first. `head`: a hash noted earlier (the Audit page shows the
    newest); it must still be in the chain, which catches entries deleted from its end."""
    prev, prev_id, count, seen_head = GENESIS, None, 0, head is None
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=chunk_size):
        if entry.prev_hash != prev:
            reason = (FIRST_BROKEN.format(id=entry.pk) if prev_id is None
                      else LINK_BROKEN.format(id=entry.pk, prev=prev_id))
            return ChainCheck(count, prev, entry.pk, reason)
        if entry_hash(prev, entry) != entry.hash:
            return ChainCheck(count, prev, entry.pk, CHANGED.format(id=entry.pk))
        prev, prev_id, count = entry.hash, entry.pk, count + 1
        seen_head = seen_head or entry.hash == head
    if not seen_head:
        return ChainCheck(count, prev, prev_id or 0, HEAD_MISSING.format(head=head))
    return ChainCheck(count, prev)


def chain_head() -> tuple[int, str]:
    """The newest entry's id and hash (0, GENESIS for an empty log)."""
    row = AuditEntry.objects.order_by("-id").values_list("id", "hash").first()
    return (row[0], row[1]) if row else (0, GENESIS)
