"""A local cluster's status: its role and state word, and what keeps it from being shut down
or started (a clone, a standby being made, an in-place restore or a promotion)."""

from __future__ import annotations

import contextlib
import functools

from ..base import ClusterRef, ClusterStatus, PlatformError, Role, TransientError
from .backrest import REPOS
from .clone import IN_PROGRESS
from .core import LocalCore
from .database import DATABASE_TO_NAME, connect_hint, query
from .fleet import ClusterRecord


class StatusMixin(LocalCore):
    # -- status --------------------------------------------------------------------------

    def clusters(self) -> list[ClusterStatus]:
        return [self._status(record) for record in self._fleet.records()]

    def cluster_status(self, ref: ClusterRef) -> ClusterStatus:
        return self._status(self._record(ref))

    def _status(self, record: ClusterRecord) -> ClusterStatus:
        def status(role: Role, version: str, word: str, message: str,
                   database: str = "postgres") -> ClusterStatus:
            return ClusterStatus(self._ref(record.name), role, version, word, message,
                                 repos=REPOS,
                                 connect_hint=connect_hint(self._fleet, record, database))

        if record.state:  # a clone or a standby being made, or one that failed
            describe = self._standbys.describe if record.standby_of else self._cloner.describe
            word, message = describe(record)
            role: Role = "unknown"
            # Unknown until promoted: a recovering server reports itself in recovery.
            if record.state not in ("restoring", "recovering"):
                role = "shutdown"
                if self._running(record):
                    role = "unknown"
                    database = "postgres"
                    with contextlib.suppress(PlatformError):
                        rows = query(self._fleet, record,
                                     f"select pg_is_in_recovery(), {DATABASE_TO_NAME}",
                                     params=(record.name,))
                        role = "standby" if rows[0][0] else "primary"
                        database = rows[0][1]
                    return status(role, record.pg_version, word, message, database)
            return status(role, record.pg_version, word, message)
        busy = self._busy_message(record)
        if not self._running(record):
            if busy:
                return status("shutdown", record.pg_version, busy[0], busy[1])
            return status("shutdown", record.pg_version, "stopped", "PostgreSQL is not running.")
        try:
            rows = query(
                self._fleet, record,
                f"select pg_is_in_recovery(), current_setting('server_version'), "
                f"{DATABASE_TO_NAME}", params=(record.name,),
            )
        except TransientError as exc:
            word = busy[0] if busy else "starting"
            return status("unknown", record.pg_version, word, exc.message)
        in_recovery, version, database = rows[0]
        status = functools.partial(status, database=database)
        role = "standby" if in_recovery else "primary"
        version = str(version).split()[0]
        if busy:
            return status(role, version, busy[0], busy[1])
        if record.is_standby:
            source = (record.standby_of or {}).get("source")
            repo = (record.standby_of or {}).get("repo")
            return status(
                role,
                version,
                "ready",
                f"PostgreSQL {version} is running as a {role} of {source}, replaying "
                f"{source}'s {repo}.",
            )
        if not record.initialized:
            return status(
                role, version, "creating", "Creation has not finished; create it again to resume."
            )
        if (record.clone_of or {}).get("scratch"):
            source = (record.clone_of or {}).get("source")
            return status(role, version, "ready", f"A drill's scratch copy of {source}, with "
                          "archiving off; deleted when the drill ends.")
        return status(role, version, "ready", f"PostgreSQL {version} is running as a {role}.")

    def _busy_message(self, record: ClusterRecord) -> tuple[str, str] | None:
        """(state word, sentence) while an in-place restore or a promotion owns the cluster."""
        busy = record.busy or {}
        if busy.get("kind") == "restore-in-place":
            return "restoring", self._inplace.describe(busy, record.name)
        if busy.get("kind") == "promote":
            return "promoting", self._promoter.describe(busy, record.name)
        return None

    def _power_refusal(self, record: ClusterRecord) -> str | None:
        """Why the cluster must not be shut down or started now, or None."""
        name, busy = record.name, record.busy or {}
        if record.state in IN_PROGRESS and record.clone_of is not None:
            return (
                f"{name} is a clone still being made ({record.state}): it cannot be shut down "
                "or started until the clone finishes (or destroy it)."
            )
        if record.state in ("restoring", "starting") and record.standby_of is not None:
            return (
                f"{name} is still being made a standby ({record.state}): it cannot be shut "
                "down or started until that finishes (or destroy it)."
            )
        if busy:
            what = {"restore-in-place": "restored in place", "promote": "promoted"}
            return (
                f"{name} is being {what.get(str(busy.get('kind')), busy.get('kind'))} by "
                f"operation {busy.get('operation_id')}: it cannot be shut down or started "
                "until that ends."
            )
        return None
