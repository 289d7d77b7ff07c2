"""Integration tests of the local platform against real PostgreSQL 15 and pgBackRest.

One cluster (`hippo`) is shared by the whole module to keep it fast; tests that stop it start
it again before they end.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pwd
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from restores.platforms.base import (
    Applied,
    ClusterRef,
    JobStatus,
    PermanentError,
    RepoInventory,
    TransientError,
)
from restores.platforms.local import LocalPlatform, ensure_run_as_user
from restores.platforms.pgbackrest import OPERATION_ANNOTATION, STOP_RESOLUTION, parse_info
from tests.platforms.local.helpers import SYSTEM_PATHS, drive, snapshot

pytestmark = pytest.mark.integration

def poll(local: LocalPlatform, ref: ClusterRef, op: str, timeout: float = 300) -> list[JobStatus]:
    """backup_status until terminal; every status seen, the terminal one last."""
    return drive(lambda: local.backup_status(ref, repo="repo1", operation_id=op),
                 timeout=timeout)


def repo1(local: LocalPlatform, ref: ClusterRef) -> RepoInventory:
    (inventory,) = local.repos(ref)
    assert inventory.name == "repo1"
    return inventory


def fleet_root(local: LocalPlatform) -> Path:
    return local.fleet_dir


def job_files(local: LocalPlatform, cluster: str, op: str) -> list[str]:
    directory = fleet_root(local) / "jobs" / cluster
    return sorted(p.name for p in directory.glob(f"{op}.*"))


def begin_count(local: LocalPlatform, cluster: str, op: str) -> int:
    """How many pgBackRest backup processes wrote to this operation's log."""
    log = (fleet_root(local) / "jobs" / cluster / f"{op}.log").read_text()
    return log.count("backup command begin")


def run_as_fleet_user(local: LocalPlatform, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command the way an operator would, as the fleet's user (not via the platform)."""
    kwargs: dict = {}
    if os.geteuid() == 0:
        entry = pwd.getpwnam(ensure_run_as_user())
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(fleet_root(local)), "LANG": "C.UTF-8"}
    return subprocess.run(
        argv, cwd=fleet_root(local), env=env, capture_output=True, text=True, check=True, **kwargs
    )


def write_claim(
    local: LocalPlatform, op: str, *, summary: str = "claimed", age: float = 0, pid: int = 0
) -> Path:
    """Forge a job record as a launcher would leave it (pid 0: pgBackRest not started yet)."""
    path = fleet_root(local) / "jobs" / "hippo" / f"{op}.json"
    record = {"operation_id": op, "summary": summary, "command": "c", "created_at": time.time()}
    path.write_text(json.dumps(record | ({"pid": pid, "pid_start": 1} if pid else {})))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


@dataclasses.dataclass(frozen=True)
class TwoBackups:
    full_op: str
    incr_op: str
    full_seen: list[JobStatus]
    incr: JobStatus
    after_full: RepoInventory
    after_incr: RepoInventory


@pytest.fixture(scope="module")
def two_backups(local: LocalPlatform, hippo_ref: ClusterRef) -> TwoBackups:
    """A full backup through backup_start/backup_status, then an incr through backup_wait."""
    local.backup_start(hippo_ref, repo="repo1", backup_type="full", operation_id="op-full-1")
    full_seen = poll(local, hippo_ref, "op-full-1")
    after_full = repo1(local, hippo_ref)
    local.sql(
        hippo_ref,
        "insert into users (name, email) values ('Late', 'late@example.com')",
        database="hippo",
    )
    local.sql(hippo_ref, "select pg_switch_wal()")
    incr = local.backup_wait(hippo_ref, repo="repo1", backup_type="incr", operation_id="op-incr-1")
    return TwoBackups("op-full-1", "op-incr-1", full_seen, incr, after_full,
                      repo1(local, hippo_ref))


# -- 1. creation ------------------------------------------------------------------------------


def test_create_cluster_is_a_ready_primary_and_create_is_idempotent(
    local: LocalPlatform, hippo_ref: ClusterRef
) -> None:
    status = local.cluster_status(hippo_ref)
    assert (status.role, status.state, status.repos) == ("primary", "ready", ("repo1",))
    assert status.pg_version.startswith("15.")
    assert status.connect_hint == (
        f"psql -h {fleet_root(local)}/run -p {local.port_base} -U postgres hippo"
    )
    assert [s.ref for s in local.clusters()] == [hippo_ref]
    assert local.sql(hippo_ref, "select count(*) from users", database="hippo") == [(1000,)]
    assert local.sql(hippo_ref, "select count(*) from daily_signups",
                     database="reporting") == [(30,)]
    assert local.sql(hippo_ref, "create temporary table t (x int)") == []

    started = time.monotonic()
    again = local.cluster_create("hippo")
    assert time.monotonic() - started < 3, "an existing cluster must not be re-initialized"
    assert again == status
    record = json.loads((fleet_root(local) / "clusters/hippo/cluster.json").read_text())
    assert record["port"] == local.port_base and record["stanza"] == "db"


def test_cluster_files_belong_to_the_run_as_user_and_config_is_per_cluster(
    local: LocalPlatform, hippo_ref: ClusterRef
) -> None:
    root = fleet_root(local)
    uid = pwd.getpwnam(ensure_run_as_user()).pw_uid
    foreign = [p for p in root.rglob("*") if p.lstat().st_uid != uid]
    assert foreign == []
    assert (root / "data/hippo").stat().st_mode & 0o777 == 0o700
    conf = (root / "clusters/hippo/pgbackrest.conf").read_text()
    assert f"repo1-path={root}/repos/hippo/repo1\n" in conf
    assert f"lock-path={root}/lock/hippo\n" in conf
    pg_conf = (root / "data/hippo/postgresql.conf").read_text()
    assert f"--config={root}/clusters/hippo/pgbackrest.conf --stanza=db archive-push" in pg_conf
    # Unix socket only: nothing listens on TCP.
    assert local.sql(hippo_ref, "show listen_addresses") == [("",)]


# -- 2. full and incr backups -------------------------------------------------------------------


def test_full_then_incr_backups_show_up_in_the_repo_in_order(two_backups: TwoBackups) -> None:
    full_done, incr_done = two_backups.full_seen[-1], two_backups.incr
    assert "running" in [s.state for s in two_backups.full_seen]
    assert full_done.state == "succeeded", full_done.message
    assert incr_done.state == "succeeded", incr_done.message

    backups = two_backups.after_incr.backups
    assert [b.label for b in backups] == [full_done.result["label"], incr_done.result["label"]]
    full, incr = backups
    assert (full.type, incr.type) == ("full", "incr")
    assert incr.prior == full.label and incr.references == (full.label,)
    assert full.annotation(OPERATION_ANNOTATION) == "op-full-1"
    assert incr.annotation(OPERATION_ANNOTATION) == "op-incr-1"
    assert two_backups.after_incr.status_code == 0
    assert not two_backups.after_incr.backup_running


def test_the_recoverable_window_starts_at_the_full_and_grows(two_backups: TwoBackups) -> None:
    before, after = two_backups.after_full.window, two_backups.after_incr.window
    full, incr = two_backups.after_incr.backups
    # A second after the full's whole-second stop: the first instant a restore can reach.
    assert before.earliest == after.earliest == full.stopped_at + STOP_RESOLUTION
    assert before.latest is not None and after.latest is not None
    assert after.latest > before.latest
    assert after.latest >= incr.stopped_at
    assert after.latest_wal > before.latest_wal


# -- 3. idempotent backup_start -----------------------------------------------------------------


def test_backup_start_twice_with_one_operation_id_starts_one_backup(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups
) -> None:
    def start() -> Applied:
        return local.backup_start(hippo_ref, repo="repo1", backup_type="diff",
                                  operation_id="op-dup")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        applied = list(pool.map(lambda _: start(), range(4)))
    assert len(set(applied)) == 1
    command = applied[0].command
    assert shlex.split(command)[0] == "/usr/bin/pgbackrest"
    assert f"--annotation={OPERATION_ANNOTATION}=op-dup" in shlex.split(command)

    assert poll(local, hippo_ref, "op-dup")[-1].state == "succeeded"
    assert start() == applied[0]  # and again after it finished: still nothing new
    tagged = [
        b for b in repo1(local, hippo_ref).backups if b.annotation(OPERATION_ANNOTATION) == "op-dup"
    ]
    assert [b.type for b in tagged] == ["diff"]
    assert begin_count(local, "hippo", "op-dup") == 1
    assert job_files(local, "hippo", "op-dup") == ["op-dup.json", "op-dup.log", "op-dup.rc"]


def test_an_abandoned_claim_is_retried_and_a_fresh_one_is_respected(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups
) -> None:
    # A launcher that claimed the operation and died before starting pgBackRest, long ago.
    write_claim(local, "op-stale", age=600)
    assert local.backup_status(hippo_ref, repo="repo1", operation_id="op-stale").state == "pending"
    done = local.backup_wait(hippo_ref, repo="repo1", backup_type="incr", operation_id="op-stale")
    assert done.state == "succeeded", done.message

    # A claim seconds old belongs to a launcher still at work: do not start a second backup.
    write_claim(local, "op-fresh", age=5)
    applied = local.backup_start(hippo_ref, repo="repo1", backup_type="incr",
                                 operation_id="op-fresh")
    assert applied.summary == "claimed"
    assert job_files(local, "hippo", "op-fresh") == ["op-fresh.json"]


def test_a_backup_process_that_vanished_is_judged_by_the_repo(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    jobs = fleet_root(local) / "jobs" / "hippo"
    saved = {p: p.read_text() for p in (jobs / "op-full-1.json", jobs / "op-full-1.rc")}
    # Both launched pgBackRest, which then vanished without an rc (say, killed). The first
    # has its backup in the repo, the second has none.
    write_claim(local, "op-full-1", pid=gone.pid)
    write_claim(local, "op-ghost", pid=gone.pid)
    (jobs / "op-full-1.rc").unlink()
    try:
        found = local.backup_status(hippo_ref, repo="repo1", operation_id="op-full-1")
        assert (found.state, found.result) == ("succeeded", two_backups.full_seen[-1].result)
        ghost = local.backup_status(hippo_ref, repo="repo1", operation_id="op-ghost")
        assert ghost.state == "failed"
        assert "ended without reporting" in ghost.message
    finally:
        for path, text in saved.items():
            path.write_text(text)


def test_no_record_means_pending(local: LocalPlatform, hippo_ref: ClusterRef) -> None:
    assert local.backup_status(hippo_ref, repo="repo1", operation_id="never-started") == JobStatus(
        "pending", "The backup has not been launched yet."
    )


# -- 4. the parser against real output ----------------------------------------------------------


def test_real_info_json_parses(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups
) -> None:
    conf = fleet_root(local) / "clusters/hippo/pgbackrest.conf"
    out = run_as_fleet_user(
        local, ["pgbackrest", f"--config={conf}", "--stanza=db", "info", "--output=json"]
    )
    raw = json.loads(out.stdout)
    (stanza,) = parse_info(raw)
    assert (stanza.name, stanza.status_code, stanza.pg_version) == ("db", 0, "15")
    repo = stanza.repo("repo1")
    assert repo is not None and repo.status_code == 0
    assert repo.archive_id == "15-1"
    assert repo.archive_min == "000000010000000000000001"
    assert repo.archive_max == raw[0]["archive"][0]["max"]
    labels = [b["label"] for b in raw[0]["backup"]]
    assert [b.label for b in repo.backups] == labels
    full = repo.backups[0]
    assert full.database_size == raw[0]["backup"][0]["info"]["size"] > 0
    assert full.stopped_at.timestamp() == raw[0]["backup"][0]["timestamp"]["stop"]
    assert full.wal_start <= full.wal_stop and full.lsn_start and full.lsn_stop
    assert full.annotation(OPERATION_ANNOTATION) == "op-full-1"


# -- 5. stop and start --------------------------------------------------------------------------


def test_stop_shows_shutdown_and_start_makes_it_ready(
    local: LocalPlatform, hippo_ref: ClusterRef
) -> None:
    try:
        assert local.cluster_stop(hippo_ref).command.endswith(f"-D {fleet_root(local)}/data/hippo")
        (status,) = local.clusters()
        assert (status.role, status.state) == ("shutdown", "stopped")
        assert local.cluster_stop(hippo_ref).command == ""  # already stopped: nothing run
        with pytest.raises(TransientError):
            local.sql(hippo_ref, "select 1")
    finally:
        local.cluster_start(hippo_ref)
    status = local.cluster_status(hippo_ref)
    assert (status.role, status.state) == ("primary", "ready")
    assert local.cluster_start(hippo_ref).command == ""
    assert local.sql(hippo_ref, "select count(*) from users", database="hippo") == [(1001,)]


# -- 6. errors ----------------------------------------------------------------------------------


def test_unknown_clusters_and_bad_arguments_are_permanent_errors(
    local: LocalPlatform, hippo_ref: ClusterRef
) -> None:
    nobody = ClusterRef(namespace="local", name="nobody")
    elsewhere = ClusterRef(namespace="other", name="hippo")
    for ref in (nobody, elsewhere, ClusterRef("local", "../etc")):
        with pytest.raises(PermanentError):
            local.cluster_status(ref)
        with pytest.raises(PermanentError):
            local.repos(ref)
        with pytest.raises(PermanentError):
            local.backup_start(ref, repo="repo1", backup_type="full", operation_id="op-x")
    for repo in ("repo9", "s3", "repo2"):
        with pytest.raises(PermanentError):
            local.backup_start(hippo_ref, repo=repo, backup_type="full", operation_id="op-bad")
        with pytest.raises(PermanentError):
            local.backup_status(hippo_ref, repo=repo, operation_id="op-bad")
    weekly: Any = "weekly"
    with pytest.raises(PermanentError):
        local.backup_start(hippo_ref, repo="repo1", backup_type=weekly, operation_id="op-bad")
    with pytest.raises(PermanentError):
        local.backup_start(hippo_ref, repo="repo1", backup_type="full", operation_id="op bad;rm")
    with pytest.raises(PermanentError):
        local.cluster_create("Bad_Name")
    with pytest.raises(PermanentError):
        local.sql(hippo_ref, "select * from no_such_table")
    assert job_files(local, "hippo", "op-bad") == []


def test_a_backup_of_a_stopped_cluster_fails_with_a_clear_message(
    local: LocalPlatform, hippo_ref: ClusterRef
) -> None:
    local.cluster_stop(hippo_ref)
    try:
        status = local.backup_wait(hippo_ref, repo="repo1", backup_type="incr",
                                  operation_id="op-down")
    finally:
        local.cluster_start(hippo_ref)
    assert status.state == "failed"
    assert "could not reach a running primary" in status.message
    assert "[056]" in status.message
    assert "ERROR: [056]" in status.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a directory the run-as user cannot enter")
def test_an_unreachable_fleet_dir_is_a_permanent_error_naming_the_fix() -> None:
    private = Path(tempfile.mkdtemp(prefix="drc-private-"))  # 0700, owned by root
    try:
        platform = LocalPlatform(fleet_dir=private / "fleet", run_as=ensure_run_as_user())
        with pytest.raises(PermanentError) as caught:
            platform.clusters()
        assert str(private) in caught.value.message
        assert "DR_FLEET_DIR" in caught.value.message
        assert not (private / "fleet").exists()
    finally:
        private.rmdir()


# -- two clusters -------------------------------------------------------------------------------


def test_two_clusters_back_up_at_once_and_destroy_removes_one(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups
) -> None:
    """Each cluster has its own repo and lock path although both use the stanza `db`."""
    zebra = local.cluster_create("zebra").ref
    assert [s.ref.name for s in local.clusters()] == ["hippo", "zebra"]
    port = json.loads((fleet_root(local) / "clusters/zebra/cluster.json").read_text())["port"]
    assert port == local.port_base + 1
    local.backup_start(hippo_ref, repo="repo1", backup_type="incr", operation_id="op-pair")
    local.backup_start(zebra, repo="repo1", backup_type="full", operation_id="op-pair")
    assert poll(local, zebra, "op-pair")[-1].state == "succeeded"
    assert poll(local, hippo_ref, "op-pair")[-1].state == "succeeded"
    assert [b.type for b in repo1(local, zebra).backups] == ["full"]

    local.cluster_destroy(zebra)
    assert [s.ref.name for s in local.clusters()] == ["hippo"]
    leftovers = [p for p in fleet_root(local).rglob("*zebra*")]
    assert leftovers == []
    with pytest.raises(PermanentError):
        local.cluster_status(zebra)


# -- 7. system paths ----------------------------------------------------------------------------


def test_nothing_is_written_to_system_pgbackrest_paths(
    local: LocalPlatform, hippo_ref: ClusterRef, two_backups: TwoBackups, system_paths_before: dict
) -> None:
    # Runs last in this module: by now the fleet has created, archived, backed up and failed.
    assert snapshot(SYSTEM_PATHS) == system_paths_before
