"""The fleet directory: where every local cluster's data, config, repo, logs and jobs live.

Layout (everything owned by the run-as user):

    clusters/<name>/cluster.json       name, port, pg_version, created_at, stanza, initialized,
                                       state, clone_of (a cluster being cloned, clone.py),
                                       standby_of (standby.py) and busy (an operation on it)
    clusters/<name>/clone.json         a clone's progress (clone.py)
    clusters/<name>/.clone.lock        flock: one clone / in-place restore / standby /
                                       promotion step at a time on this cluster (operations.py)
    clusters/<name>/pgbackrest.conf    the ONLY pgBackRest config this cluster uses (a
                                       standby has none: its restore_command reads its
                                       source's repo through the source's config)
    data/<name>/                       PGDATA (0700)
    repos/<name>/repo1/                the cluster's own pgBackRest repo
    run/                               unix sockets (listen_addresses='')
    log/<name>/  lock/<name>/  spool/<name>/   pgBackRest's log, lock and spool paths
    pglog/<name>.log                   the PostgreSQL server log
    jobs/<name>/                       background backup and restore records (see jobs.py)
                                       and <op>-<kind>.progress files of operations on the
                                       cluster (in-place restore, standby, promotion)

Every cluster uses the stanza name `db` (as PGO does). That is safe only because each
cluster has its own config, repo, and lock/log/spool directories: pgBackRest names its lock
and log files after the stanza, so a shared lock-path would make backups of different
clusters block each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..base import PermanentError
from .proc import Account, is_root

STANZA = "db"
CLUSTER_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# Paths go into postgresql.conf, pgbackrest.conf and archive_command unquoted.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
# sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
SUGGESTED_FLEET_DIR = "/var/lib/dr-console/fleet"
CONF_MARKER = "# --- dr-console local platform: settings below are managed ---"


def validate_cluster_name(name: str) -> str:
    if not CLUSTER_NAME_RE.match(name):
        raise PermanentError(
            f"{name!r} is not a valid cluster name: use 1 to 40 lowercase letters, digits "
            "and '-', starting with a letter."
        )
    return name


@dataclasses.dataclass(frozen=True)
class ClusterRecord:
    """cluster.json. `initialized` turns true once stanza-create and check succeeded, so an
    interrupted cluster_create resumes instead of being taken for a finished cluster.

    A cluster made by a clone (clone.py) also has `clone_of` (source, repo, operation_id,
    point, ...) and, until the clone has finished, a `state` word: restoring, recovering,
    configuring, backing-up or failed. "" means no clone is in progress.

    A standby (standby.py) has `standby_of` (source, repo, operation_id, and once a promotion
    has been requested `promoted_by`) and, while it is being made, a `state` word: restoring,
    starting or failed. `busy` names an operation that owns an existing cluster for a while
    (an in-place restore, a promotion): {"kind", "operation_id"}; None when there is none."""

    name: str
    port: int
    pg_version: str
    created_at: str
    stanza: str = STANZA
    initialized: bool = False
    state: str = ""
    clone_of: dict[str, Any] | None = None
    standby_of: dict[str, Any] | None = None
    busy: dict[str, Any] | None = None

    @property
    def is_standby(self) -> bool:
        """Made as a standby and not (being) promoted."""
        return bool(self.standby_of) and not (self.standby_of or {}).get("promoted_by")


class Fleet:
    """Paths of one fleet, and small helpers that create files owned by the run-as user."""

    def __init__(self, root: Path, account: Account) -> None:
        self.root = root
        self.account = account

    # -- paths ---------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def cluster_dir(self, name: str) -> Path:
        return self.root / "clusters" / name

    def record_path(self, name: str) -> Path:
        return self.cluster_dir(name) / "cluster.json"

    def config_path(self, name: str) -> Path:
        return self.cluster_dir(name) / "pgbackrest.conf"

    def pgdata(self, name: str) -> Path:
        return self.root / "data" / name

    def repo_path(self, name: str, index: int = 1) -> Path:
        return self.root / "repos" / name / f"repo{index}"

    def server_log(self, name: str) -> Path:
        return self.root / "pglog" / f"{name}.log"

    def jobs_dir(self, name: str) -> Path:
        return self.root / "jobs" / name

    def pgbackrest_dirs(self, name: str) -> dict[str, Path]:
        return {kind: self.root / kind / name for kind in ("log", "lock", "spool")}

    # -- preparation ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Check the fleet is usable by the run-as user, create it if missing, and create
        the shared subdirectories. PermanentError with the fix when it is not usable."""
        self._check_path_syntax()
        self._check_traversable()
        try:
            self._create_layout()
        except OSError as exc:
            raise PermanentError(
                f"The fleet directory {self.root} cannot be set up: {exc}. Set DR_FLEET_DIR to "
                f"a directory this process can write, like {SUGGESTED_FLEET_DIR}."
            ) from exc

    def _create_layout(self) -> None:
        created = not self.root.exists()
        self.root.mkdir(mode=0o750, parents=True, exist_ok=True)
        # Only take over a directory we created or that is empty: never chown someone's data.
        if created or not any(self.root.iterdir()):
            self.chown(self.root)
        for sub, mode in (("clusters", 0o750), ("data", 0o700), ("repos", 0o700)):
            self.make_dir(self.root / sub, mode)
        for sub in ("run", "log", "lock", "spool", "pglog", "jobs"):
            self.make_dir(self.root / sub)

    def _check_path_syntax(self) -> None:
        socket = f"{self.run_dir}/.s.PGSQL.65535"
        if not SAFE_PATH_RE.match(str(self.root)) or len(socket) > MAX_SOCKET_PATH:
            raise PermanentError(
                f"The fleet directory {self.root} cannot be used: it must be an absolute path "
                f"of letters, digits, '.', '_', '-' and '/', short enough for a unix socket "
                f"path ({MAX_SOCKET_PATH} bytes). Set DR_FLEET_DIR to a path like "
                f"{SUGGESTED_FLEET_DIR}."
            )

    def _check_traversable(self) -> None:
        groups = set(self.account.groups)
        for path in [*reversed(self.root.parents), self.root]:
            if not path.exists():
                break
            if not _may_search(os.stat(path), self.account.uid, groups):
                raise PermanentError(
                    f"The fleet directory {self.root} is not reachable by the OS user "
                    f"{self.account.name!r}: it cannot enter {path}. PostgreSQL and pgBackRest "
                    f"run as that user. Set DR_FLEET_DIR to a path it can reach, like "
                    f"{SUGGESTED_FLEET_DIR}, or grant it access to {path}."
                )

    # -- files ---------------------------------------------------------------------------

    def chown(self, path: Path | int) -> None:
        """Give a path (or an open file descriptor) to the run-as user; no-op unless root."""
        if not is_root():
            return
        if isinstance(path, int):
            os.fchown(path, self.account.uid, self.account.gid)
        else:
            os.chown(path, self.account.uid, self.account.gid, follow_symlinks=False)

    def make_dir(self, path: Path, mode: int = 0o750) -> Path:
        """mkdir -p for one level below an existing fleet directory, owned by the user."""
        if not path.is_dir():
            path.mkdir(mode=mode, parents=True, exist_ok=True)
            self.chown(path)
        return path

    def write_file(self, path: Path, text: str, mode: int = 0o640) -> None:
        """Replace a file atomically (readers never see half of it), owned by the user."""
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as handle:
            self.chown(handle.fileno())
            handle.write(text)
        os.replace(tmp, path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize cluster creation and removal across threads and processes."""
        fd = os.open(self.root / ".fleet.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            self.chown(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- cluster records -----------------------------------------------------------------

    def record(self, name: str) -> ClusterRecord | None:
        try:
            raw = json.loads(self.record_path(name).read_text())
        except FileNotFoundError:
            return None
        fields = {f.name for f in dataclasses.fields(ClusterRecord)}
        return ClusterRecord(**{k: v for k, v in raw.items() if k in fields})

    def records(self) -> list[ClusterRecord]:
        names = sorted(p.parent.name for p in (self.root / "clusters").glob("*/cluster.json"))
        return [r for r in (self.record(n) for n in names) if r is not None]

    def save_record(self, record: ClusterRecord) -> None:
        self.write_file(
            self.record_path(record.name), json.dumps(dataclasses.asdict(record), indent=2)
        )

    def create_record(self, record: ClusterRecord) -> bool:
        """Write cluster.json only if it does not exist yet (O_EXCL semantics, and readers
        never see half a file: it is written aside, then hard-linked into place). False when
        a record was already there. The cluster directory must exist."""
        path = self.record_path(record.name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        self.write_file(tmp, json.dumps(dataclasses.asdict(record), indent=2))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def next_port(self, port_base: int) -> int:
        """The first port >= port_base no cluster of this fleet has (deterministic)."""
        used = {r.port for r in self.records()}
        return next(p for p in range(port_base, 65536) if p not in used)

    def new_record(self, name: str, *, port_base: int, pg_version: str) -> ClusterRecord:
        """A record for a new cluster on the first port >= port_base no other cluster of
        this fleet has. Call under lock()."""
        created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return ClusterRecord(
            name=name, port=self.next_port(port_base), pg_version=pg_version, created_at=created_at
        )

    def in_the_way(self, name: str) -> list[Path]:
        """What already exists under this cluster name: its record, config, data, repo or
        job directories. [] when a new cluster can take the name. name must be valid."""
        paths = (
            self.cluster_dir(name),
            self.pgdata(name),
            self.repo_path(name).parent,
            self.jobs_dir(name),
        )
        return [p for p in paths if os.path.lexists(p)]

    def remove_cluster(self, name: str) -> None:
        """Delete everything of one cluster. The server must be stopped."""
        paths = [
            self.pgdata(name),
            self.repo_path(name).parent,
            self.jobs_dir(name),
            *self.pgbackrest_dirs(name).values(),
            self.server_log(name),
            self.cluster_dir(name),  # last: cluster.json is what makes a cluster exist
        ]
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    # -- configuration -------------------------------------------------------------------

    def pgbackrest_conf(self, record: ClusterRecord) -> str:
        """The cluster's pgbackrest.conf. log/lock/spool paths are in the file, not on
        command lines, so archive-push (started by PostgreSQL) uses the same ones."""
        dirs = self.pgbackrest_dirs(record.name)
        return (
            "[global]\n"
            f"repo1-path={self.repo_path(record.name)}\n"
            "repo1-retention-full=4\n"
            f"log-path={dirs['log']}\n"
            f"lock-path={dirs['lock']}\n"
            f"spool-path={dirs['spool']}\n"
            "start-fast=y\n"
            "log-level-console=info\n"
            "log-level-file=detail\n"
            "\n"
            f"[{STANZA}]\n"
            f"pg1-path={self.pgdata(record.name)}\n"
            f"pg1-port={record.port}\n"
            f"pg1-socket-path={self.run_dir}\n"
            # Without it pgBackRest connects as the OS user's name, which is no role here.
            "pg1-user=postgres\n"
        )

    def postgresql_conf(self, record: ClusterRecord, pgbackrest: str) -> str:
        """Lines appended to postgresql.conf after initdb."""
        archive = f"{pgbackrest} --config={self.config_path(record.name)} --stanza={STANZA}"
        return (
            f"\n{CONF_MARKER}\n"
            f"port = {record.port}\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.run_dir}'\n"
            "wal_level = replica\n"
            "archive_mode = on\n"
            f"archive_command = '{archive} archive-push %p'\n"
            # Bounds how stale the repo (and so the recoverable window) can get when idle.
            "archive_timeout = 60\n"
            "max_wal_senders = 5\n"
        )


def _may_search(st: os.stat_result, uid: int, groups: set[int]) -> bool:
    """Whether uid (with groups) may traverse a directory with this stat (ACLs ignored)."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
