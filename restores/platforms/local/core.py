"""What the local platform's parts share: its settings, the fleet, the runner and pgBackRest
set up on first use, the phase machines (clone, standby, in-place restore, promotion), and how
a cluster is named and looked up."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import TypeVar

from ..base import ClusterRef, PermanentError, Platform
from .backrest import Backrest
from .clone import Cloner
from .fleet import ClusterRecord, Fleet, validate_cluster_name
from .inplace import InPlaceRestorer
from .phases import PhaseMachine
from .proc import Runner, find_pg_bindir, resolve_account
from .promotion import Promoter
from .standby import Standbys

POLL_SECONDS = 0.5
M = TypeVar("M", bound=PhaseMachine)
# How soon an operation looks again at a restore, backup or server of this host: checking
# costs a few file reads and a pg_ctl status, and every restore waits for it twice (its end,
# the promotion). settings.DR_LOCAL_POLL_MS sets it for the console.
POLL_INTERVAL = dt.timedelta(milliseconds=250)

class LocalCore(Platform):
    """Clusters on this host. Construction is cheap and has no side effects; the first call
    checks and prepares the fleet directory and raises PermanentError if it is unusable."""

    name = "local"
    drills = True
    # Every standby's source is a cluster of this host: promotion checks it every time.
    checks_standby_source = True
    # Restores here compete with the running clusters for this host's cores: more processes
    # than twice the cores only adds contention.
    process_max_limit = max(1, min(16, 2 * (os.cpu_count() or 1)))

    def __init__(
        self,
        *,
        fleet_dir: Path,
        run_as: str | None = None,
        namespace: str = "local",
        port_base: int = 55432,
        pg_bindir: str | None = None,
        poll_interval: dt.timedelta = POLL_INTERVAL,
    ) -> None:
        self.fleet_dir = Path(fleet_dir).absolute()
        self.run_as = run_as
        self.namespace = namespace
        self.port_base = port_base
        self.pg_bindir = pg_bindir
        self.poll_interval = poll_interval

    # -- set-up --------------------------------------------------------------------------

    @functools.cached_property
    def _fleet(self) -> Fleet:
        fleet = Fleet(self.fleet_dir, resolve_account(self.run_as))
        fleet.prepare()
        return fleet

    @functools.cached_property
    def _runner(self) -> Runner:
        return Runner(self._fleet.account, find_pg_bindir(self.pg_bindir), self.fleet_dir)

    @functools.cached_property
    def _backrest(self) -> Backrest:
        return Backrest(self._fleet, self._runner)

    def _machine(self, kind: type[M]) -> M:
        """The fleet's phase machine of one kind (clone, standby, in-place, promotion)."""
        return kind(self._fleet, self._runner, self._backrest, namespace=self.namespace,
                    port_base=self.port_base)

    @functools.cached_property
    def _cloner(self) -> Cloner:
        return self._machine(Cloner)

    @functools.cached_property
    def _inplace(self) -> InPlaceRestorer:
        return self._machine(InPlaceRestorer)

    @functools.cached_property
    def _standbys(self) -> Standbys:
        return self._machine(Standbys)

    @functools.cached_property
    def _promoter(self) -> Promoter:
        return self._machine(Promoter)

    @functools.cached_property
    def _pg_version(self) -> str:
        """The server binaries' version, e.g. "15.20" (what `show server_version` starts with)."""
        out = self._runner.run([self._bin("postgres"), "--version"], what="postgres --version")
        match = re.search(r"\) (\d+(?:\.\d+)?)", out.stdout)
        return match.group(1) if match else ""

    def _bin(self, program: str) -> str:
        return str(self._runner.bindir / program)

    def _ref(self, name: str) -> ClusterRef:
        return ClusterRef(namespace=self.namespace, name=name)

    def _record(self, ref: ClusterRef) -> ClusterRecord:
        """The cluster's record; PermanentError when this fleet has no such cluster."""
        record = None
        if ref.namespace == self.namespace and valid_name(ref.name):
            record = self._fleet.record(ref.name)
        if record is None:
            raise PermanentError(
                f"There is no local cluster {ref.name!r} in namespace {ref.namespace!r}."
            )
        return record

    def _running(self, record: ClusterRecord) -> bool:
        """pg_ctl status: 0 running, 3 not running, 4 no usable data directory."""
        if not (self._fleet.pgdata(record.name) / "PG_VERSION").exists():
            return False
        argv = [self._bin("pg_ctl"), "status", "-D", str(self._fleet.pgdata(record.name))]
        return self._runner.run(argv, what="pg_ctl status", check=False, timeout=30).returncode == 0


def valid_name(name: str) -> bool:
    try:
        validate_cluster_name(name)
    except PermanentError:
        return False
    return True
