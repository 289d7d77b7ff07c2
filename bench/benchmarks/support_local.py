"""A throwaway local fleet for the benchmarks that need real PostgreSQL and pgBackRest, and the
by-hand baselines they are compared with. Registers no benchmark.

The fleet is made the way tests/platforms/conftest.py makes one: a directory under /tmp,
mode 0755 so the unprivileged run-as user can enter it, `ensure_run_as_user()`, and a port base
of its own (60000-61990: above a demo fleet on 55432 and the test fleets in 56000-59990; local
clusters listen on unix sockets in the fleet's run/ only, so this keeps the process list
readable more than it avoids a clash).

Nothing here imports Django: the recovery benchmark times the platform side without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from bench.framework import BenchError
from restores.platforms.base import CloneRequest, ClusterRef, PlatformError
from restores.platforms.local import LocalPlatform, ensure_run_as_user, ports
from restores.platforms.local.fleet import Fleet
from restores.platforms.local.proc import Runner, find_pg_bindir, resolve_account
from restores.platforms.targets import RestoreTarget

NAMESPACE = "local"
PORT_RANGE = (60000, 62000)
MiB = 2**20
# How often the by-hand baseline asks a starting server whether it is promoted.
PROBE_SECONDS = 0.02


def free_port_base(width: int = 10) -> int:
    low, high = PORT_RANGE
    try:
        return ports.free_port_base(low, high, width)
    except RuntimeError as exc:
        raise BenchError(f"{exc} for the bench fleet") from None


@dataclasses.dataclass
class BenchFleet:
    """A LocalPlatform on a fresh fleet directory, with the same paths and runner it uses."""

    platform: LocalPlatform
    root: Path
    run_as: str
    port_base: int

    def __post_init__(self) -> None:
        account = resolve_account(self.run_as)
        self.fleet = Fleet(self.root, account)
        self.runner = Runner(account, find_pg_bindir(None), self.root)

    def ref(self, name: str) -> ClusterRef:
        return ClusterRef(NAMESPACE, name)

    def port(self, name: str) -> int:
        record = self.fleet.record(name)
        if record is None:
            raise BenchError(f"the bench fleet has no cluster {name}")
        return record.port

    def bin(self, program: str) -> str:
        return str(self.runner.bindir / program)

    def connect_args(self, name: str) -> list[str]:
        return ["-h", str(self.fleet.run_dir), "-p", str(self.port(name)), "-U", "postgres"]

    def run(self, argv: list[str], *, what: str, timeout: float = 3600) -> str:
        """Run a program as the fleet's user; its stdout. BenchError when it fails."""
        try:
            return self.runner.run(argv, what=what, timeout=timeout).stdout
        except PlatformError as exc:
            raise BenchError(f"{exc.message}\n{exc.detail[-2000:]}") from exc


@contextlib.contextmanager
def bench_fleet(prefix: str) -> Iterator[BenchFleet]:
    """A fleet directory of its own; every cluster in it destroyed and the directory removed
    at the end, whatever happens."""
    # Not a 0700 temporary directory: the run-as user must be able to enter it.
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    run_as = ensure_run_as_user()
    port_base = free_port_base()
    platform = LocalPlatform(fleet_dir=root, run_as=run_as, namespace=NAMESPACE,
                             port_base=port_base)
    bf = BenchFleet(platform, root, run_as, port_base)
    try:
        yield bf
    finally:
        with contextlib.suppress(PlatformError):
            for status in platform.clusters():
                with contextlib.suppress(PlatformError):
                    platform.cluster_destroy(status.ref)
        stop_stray_servers(bf)
        shutil.rmtree(root, ignore_errors=True)


def stop_stray_servers(bf: BenchFleet) -> None:
    """Stop any server still running from the fleet's data directories (a by-hand baseline
    interrupted half-way): they are not in the fleet's records."""
    for pgdata in (bf.root / "data").glob("*"):
        if (pgdata / "postmaster.pid").exists():
            bf.runner.run([bf.bin("pg_ctl"), "stop", "-m", "immediate", "-D", str(pgdata)],
                          what="pg_ctl stop", check=False, timeout=60)


# -- the data set --------------------------------------------------------------------------------


def pgbench_init(bf: BenchFleet, name: str, *, scale: int, database: str = "bench") -> None:
    """A pgbench database of `scale` (about 15 MiB of files per unit) in cluster `name`."""
    bf.platform.sql(bf.ref(name), f"create database {database}")
    argv = [bf.bin("pgbench"), "-i", "-q", "-s", str(scale), *bf.connect_args(name), database]
    bf.run(argv, what="pgbench -i")


def pgbench_load(bf: BenchFleet, name: str, *, seconds: float,
                 database: str = "bench") -> dt.datetime:
    """Run pgbench for `seconds` (two clients) and return the moment half-way through it, in
    UTC: a point in time with WAL on both sides."""
    argv = [bf.bin("pgbench"), "-n", "-c", "2", "-T", str(int(seconds)), *bf.connect_args(name),
            database]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            bf.run(argv, what="pgbench", timeout=seconds + 120)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, name="pgbench")
    thread.start()
    time.sleep(seconds / 2)
    middle = dt.datetime.now(dt.UTC).replace(microsecond=0)
    thread.join()
    if errors:
        raise errors[0]
    return middle


def switch_wal_and_wait_archived(bf: BenchFleet, name: str, *, timeout: float = 120) -> str:
    """pg_switch_wal() and wait until the segment it closed is in the repo; its name."""
    ref = bf.ref(name)
    ((segment,),) = bf.platform.sql(ref, "select pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + timeout
    while True:
        ((last, failed),) = bf.platform.sql(
            ref, "select coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') "
                 "from pg_stat_archiver")
        # Same timeline: WAL file names sort in WAL order.
        if last and last[8:] >= segment[8:]:
            return str(segment)
        if time.monotonic() > deadline:
            raise BenchError(f"{segment} was not archived within {timeout:.0f} s "
                             f"(last archived {last or 'none'}, last failed {failed or 'none'})")
        time.sleep(0.1)


def disk_bytes(path: Path) -> int:
    """Bytes allocated under path (like du -s --block-size=1)."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for file in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, file)).st_blocks * 512
    return total


# -- the by-hand baseline ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HandRun:
    restore_s: float
    start_to_writable_s: float | None  # None when the server was not started
    restored_bytes: int
    command: str

    @property
    def total_s(self) -> float:
        return self.restore_s + (self.start_to_writable_s or 0.0)


def restore_command(bf: BenchFleet, *, source: str, point: RestoreTarget, target: str,
                    process_max: int | None = None) -> list[str]:
    """The restore command the console would run for this clone, exactly: read from
    LocalPlatform.clone_plan (which builds it with the same code as the clone itself)."""
    request = CloneRequest(operation_id="bench-by-hand", source=bf.ref(source), repo="repo1",
                           target=bf.ref(target), point=point, process_max=process_max)
    return shlex.split(bf.platform.clone_plan(request).command)


def restore_port(argv: list[str]) -> int:
    """The port a restore command gives the restored server (--recovery-option=port=N)."""
    for arg in argv:
        match = re.fullmatch(r"--recovery-option=port=(\d+)", arg)
        if match:
            return int(match.group(1))
    raise ValueError("the restore command sets no port")


def restore_pgdata(argv: list[str]) -> Path:
    for arg in argv:
        if arg.startswith("--pg1-path="):
            return Path(arg.split("=", 1)[1])
    raise ValueError("the restore command names no --pg1-path")


def by_hand(bf: BenchFleet, *, source: str, point: RestoreTarget, target: str,
            process_max: int | None = None, start: bool = True,
            timeout: float = 1800) -> HandRun:
    """What a DBA would type: `pgbackrest restore` with the console's options into a fresh
    directory, `pg_ctl start`, then ask until the server accepts connections and is out of
    recovery (every 20 ms). The server is stopped and the directory removed afterwards."""
    argv = restore_command(bf, source=source, point=point, target=target,
                           process_max=process_max)
    pgdata, port = restore_pgdata(argv), restore_port(argv)
    log = bf.fleet.server_log(target)
    bf.fleet.make_dir(pgdata, 0o700)
    try:
        t0 = time.perf_counter()
        bf.run(argv, what="pgbackrest restore", timeout=timeout)
        restore_s = time.perf_counter() - t0
        restored = disk_bytes(pgdata)
        writable = None
        if start:
            t1 = time.perf_counter()
            bf.run([bf.bin("pg_ctl"), "start", "-W", "-D", str(pgdata), "-l", str(log)],
                   what="pg_ctl start", timeout=120)
            wait_promoted(bf, port, timeout=timeout, log=log)
            writable = time.perf_counter() - t1
        return HandRun(restore_s, writable, restored, shlex.join(argv))
    finally:
        if (pgdata / "postmaster.pid").exists():
            bf.runner.run([bf.bin("pg_ctl"), "stop", "-m", "immediate", "-D", str(pgdata)],
                          what="pg_ctl stop", check=False, timeout=120)
        shutil.rmtree(pgdata, ignore_errors=True)
        log.unlink(missing_ok=True)


def wait_promoted(bf: BenchFleet, port: int, *, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(psycopg.OperationalError):
            with psycopg.connect(host=str(bf.fleet.run_dir), port=port, user="postgres",
                                 dbname="postgres", connect_timeout=2, autocommit=True) as conn:
                (in_recovery,) = conn.execute("select pg_is_in_recovery()").fetchone() or (True,)
                if not in_recovery:
                    return
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise BenchError(f"the by-hand restore was not promoted within {timeout:.0f} s\n"
                             f"{tail}")
        time.sleep(PROBE_SECONDS)


# -- the disk ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DiskRun:
    size: int  # bytes written and read
    write_s: float
    read_s: float


def dd_throughput(directory: Path, size: int) -> DiskRun:
    """`dd` of `size` bytes (whole MiB) into `directory` with conv=fdatasync, then read back with
    O_DIRECT (bypassing the page cache, as a cold read)."""
    count = max(1, round(size / MiB))
    path = directory / "bench-dd.tmp"
    try:
        t0 = time.perf_counter()
        _dd(["if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", "conv=fdatasync"])
        write_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        _dd([f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"])
        read_s = time.perf_counter() - t1
    finally:
        path.unlink(missing_ok=True)
    return DiskRun(count * MiB, write_s, read_s)


def _dd(args: list[str]) -> None:
    proc = subprocess.run(["dd", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"dd {' '.join(args)} failed: {proc.stderr.strip()}")


# -- reading a server log ------------------------------------------------------------------------

_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (\S+) \[\d+\] LOG:\s+(.*)$", re.M)


def promotion_time(log: str) -> dt.datetime | None:
    """When a server restored from a backup became a writable primary: the first "database
    system is ready to accept connections" (not "read-only connections") in its log, with
    PostgreSQL's default log_line_prefix '%m [%p] '. UTC and GMT stamps are read as UTC, any
    other zone as this host's local time. None when the log has no such line."""
    for match in _LOG_LINE.finditer(log):
        stamp, zone, message = match.groups()
        if message.strip() != "database system is ready to accept connections":
            continue
        naive = dt.datetime.fromisoformat(stamp)
        if zone in ("UTC", "GMT"):
            return naive.replace(tzinfo=dt.UTC)
        return naive.astimezone(dt.UTC)
    return None
