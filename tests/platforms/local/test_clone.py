"""Integration tests of clones and point-in-time recovery into a new local cluster, against
real PostgreSQL 15 and pgBackRest.

One source cluster (`walrus`, demo data, one full backup) serves the whole module; each test
clones it into a cluster of its own and destroys that at the end.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restores.platforms.base import CloneRequest, ClusterRef, JobStatus, PermanentError
from restores.platforms.local import LocalPlatform
from restores.platforms.local.proc import process_alive
from restores.platforms.targets import RestoreTarget
from tests.platforms.local.helpers import flush_wal, run_clone, tables, wait_until_after

pytestmark = pytest.mark.integration

RESULT_KEYS = {
    "port",
    "restore_seconds",
    "recovery_seconds",
    "restored_bytes",
    "throughput_mib_s",
    "first_backup",
    "dropped_databases",
}
# Every cluster this module may create; the module fixture destroys whichever exist.
CLONES = ("elephant", "rhino", "gazelle", "moose", "yak", "bison", "tapir", "okapi", "ibex")


@dataclasses.dataclass(frozen=True)
class Source:
    ref: ClusterRef
    full_label: str
    port: int


@pytest.fixture(scope="module")
def source(local: LocalPlatform) -> Iterator[Source]:
    ref = local.cluster_create("walrus").ref
    try:
        local.load_demo_data(ref)
        full = local.backup_wait(ref, repo="repo1", backup_type="full", operation_id="walrus-full")
        assert full.state == "succeeded", full.message
        record = json.loads((local.fleet_dir / "clusters/walrus/cluster.json").read_text())
        yield Source(ref, full.result["label"], record["port"])
    finally:
        for name in (*CLONES, "walrus"):
            if (local.fleet_dir / "clusters" / name / "cluster.json").exists():
                local.cluster_destroy(ClusterRef("local", name))


def target(name: str) -> ClusterRef:
    return ClusterRef("local", name)


def request(source: Source, name: str, op: str, point: RestoreTarget, **kw) -> CloneRequest:
    return CloneRequest(
        operation_id=op, source=source.ref, repo="repo1", target=target(name), point=point, **kw
    )


def log_count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


# -- 1. PITR into a new cluster --------------------------------------------------------------------


def test_pitr_into_a_new_cluster_brings_back_a_dropped_table(
    local: LocalPlatform, source: Source
) -> None:
    src, root = source.ref, local.fleet_dir
    (before,) = local.repos(src)
    # pgBackRest keeps backup stop times in whole seconds, and a time target must be after
    # the stop of the backup it starts from ([075] otherwise): stay clear of that second.
    wait_until_after(local, src, before.backups[-1].stopped_at + dt.timedelta(seconds=1))
    local.sql(src, "create table users (id int primary key, name text)")
    local.sql(src, "insert into users select g, 'user ' || g from generate_series(1, 250) g")
    ((point,),) = local.sql(src, "select clock_timestamp()")
    assert isinstance(point, dt.datetime) and point.utcoffset() is not None
    local.sql(src, "drop table users")
    local.sql(src, "create table after_drop (x int)")
    local.sql(src, "insert into after_drop values (42)")
    flush_wal(local, src)

    req = request(source, "elephant", "op-pitr-1", RestoreTarget(kind="time", time=point))
    plan = local.clone_plan(req)
    assert not (root / "clusters/elephant").exists(), "clone_plan must change nothing"
    run = run_clone(local, req)
    done = run.last
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert "running" in [s.state for s in run.statuses]
    states = [state for _role, state in run.cluster_states]
    assert states[0] == "restoring" and "recovering" in states
    assert ("unknown", "restoring") in run.cluster_states
    assert run.cluster_states[-1] == ("primary", "ready")

    # The plan said exactly what ran.
    restore_job = json.loads((root / "jobs/elephant/op-pitr-1-restore.json").read_text())
    assert plan.command == restore_job["command"]
    argv = plan.command.split()
    assert f"--config={root}/clusters/walrus/pgbackrest.conf" in argv
    assert "--type=time" in argv and "--target-action=promote" in argv
    assert "--archive-mode=off" in argv and argv[-1] == "restore"
    assert f"--recovery-option=port={done.result['port']}" in argv
    assert any(step.startswith("Replay WAL to ") and "(inclusive)" in step for step in plan.steps)

    # The table is back on the new cluster, and what came after the target is not there.
    elephant = target("elephant")
    assert local.sql(elephant, "select count(*), max(id) from users") == [(250, 250)]
    assert "after_drop" not in tables(local, elephant, "postgres")
    # The source is untouched.
    assert tables(local, src, "postgres") == ["after_drop"]

    # A primary of its own, on its own port.
    port = int(done.result["port"])
    assert port != source.port
    assert local.sql(elephant, "select pg_is_in_recovery(), current_setting('port')") == [
        (False, str(port))
    ]
    settings = local.sql(
        elephant,
        "select current_setting('archive_mode'), current_setting('archive_command'), "
        "current_setting('restore_command'), current_setting('recovery_target_time')",
    )
    own_conf = f"{root}/clusters/elephant/pgbackrest.conf"
    assert settings == [
        ("on", f"/usr/bin/pgbackrest --config={own_conf} --stanza=db archive-push %p", "", "")
    ]
    conf, source_conf = (
        (root / f"clusters/{name}/pgbackrest.conf").read_text() for name in ("elephant", "walrus")
    )
    assert f"repo1-path={root}/repos/elephant/repo1\n" in conf
    assert f"repo1-path={root}/repos/walrus/repo1\n" in source_conf
    assert f"lock-path={root}/lock/elephant\n" in conf

    # Its own first full backup in its own repo, and its new timeline archived there.
    (own,) = local.repos(elephant)
    assert [(b.type, b.label) for b in own.backups] == [("full", done.result["first_backup"])]
    assert list((root / "repos/elephant/repo1/archive/db").glob("*/00000002.history*"))

    # The source's repo got nothing from the clone: same backups, no new timeline.
    (after,) = local.repos(src)
    assert [b.label for b in after.backups] == [b.label for b in before.backups]
    assert after.window.latest_wal[:8] == before.window.latest_wal[:8] == "00000001"
    assert not list((root / "repos/walrus/repo1/archive/db").glob("*/*.history*"))

    assert set(done.result) == RESULT_KEYS
    assert float(done.result["restore_seconds"]) > 0
    assert float(done.result["recovery_seconds"]) > 0
    assert int(done.result["restored_bytes"]) > 20 * 2**20
    assert float(done.result["throughput_mib_s"]) > 0
    assert done.result["dropped_databases"] == ""
    assert "elephant is a new primary" in done.message

    # Finished is finished: another call reports the same result and does nothing.
    assert local.clone_advance(req) == done


# -- 2. clone at latest, idempotence, a new process mid-restore ------------------------------------


def test_clone_latest_twice_per_step_and_from_a_new_process_restores_once(
    local: LocalPlatform, source: Source
) -> None:
    root, src = local.fleet_dir, source.ref
    local.sql(src, "create table latest_marker (x int)", database="walrus")
    local.sql(src, "insert into latest_marker values (7)", database="walrus")
    flush_wal(local, src)
    req = request(source, "rhino", "op-latest-1", RestoreTarget(kind="latest"))
    plan = local.clone_plan(req)
    assert "--type=default" in plan.command.split()
    assert "--target-action=promote" not in plan.command

    record_path = root / "clusters/rhino/cluster.json"
    first, second = local.clone_advance(req), local.clone_advance(req)
    assert first.state == "running" and second.state == "running"
    record = json.loads(record_path.read_text())
    assert record["state"] == "restoring"
    assert record["clone_of"]["operation_id"] == "op-latest-1"
    assert record["clone_of"]["source"] == "walrus" and record["clone_of"]["repo"] == "repo1"
    # Concurrent calls: one restore launch at most.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: local.clone_advance(req), range(4)))
    assert {s.state for s in statuses} == {"running"}
    restore_job = json.loads((root / "jobs/rhino/op-latest-1-restore.json").read_text())
    assert restore_job["command"] == plan.command
    # The restore job starts the server itself once the restore succeeded (no step between
    # the two): it is starting before anyone calls clone_advance again.
    deadline = time.monotonic() + 120
    while not (root / "jobs/rhino/op-latest-1-restore.rc").exists():
        assert time.monotonic() < deadline, "the restore did not finish"
        time.sleep(0.1)
    while log_count(root / "pglog/rhino.log", "starting PostgreSQL") == 0:
        assert time.monotonic() < deadline, "the restore job did not start the server"
        time.sleep(0.1)

    # The process "dies": a fresh platform object carries on from the files alone.
    fresh = LocalPlatform(
        fleet_dir=root, run_as=local.run_as, namespace=local.namespace, port_base=local.port_base
    )
    run = run_clone(fresh, req, calls_per_poll=2)
    assert run.last.state == "succeeded", f"{run.last.message}\n{run.last.detail}"

    rhino = target("rhino")
    assert local.sql(rhino, "select x from latest_marker", database="walrus") == [(7,)]
    jobs = root / "jobs/rhino"
    assert sorted(p.name for p in jobs.iterdir()) == [
        f"op-latest-1-{job}.{ext}"
        for job in ("first-backup", "restore")
        for ext in ("json", "log", "rc")
    ]
    assert log_count(jobs / "op-latest-1-restore.log", "restore command begin") == 1
    assert log_count(jobs / "op-latest-1-first-backup.log", "backup command begin") == 1
    # Started once for recovery, restarted once to turn archiving on.
    assert log_count(root / "pglog/rhino.log", "starting PostgreSQL") == 2
    assert local.clone_advance(req) == run.last
    status = local.cluster_status(rhino)
    assert status.state == "ready"
    # The connect line names a database the clone holds (walrus's), not one named rhino.
    assert status.connect_hint.endswith("-U postgres walrus")
    assert local.sql(rhino, "select 1", database=status.connect_hint.split()[-1]) == [(1,)]
    assert json.loads(record_path.read_text())["state"] == ""


def test_clone_at_a_backup_set_stops_at_that_backup(local: LocalPlatform, source: Source) -> None:
    src = source.ref
    local.sql(src, "create table after_full (x int)", database="walrus")
    flush_wal(local, src)
    point = RestoreTarget(kind="set", label=source.full_label)
    req = request(source, "gazelle", "op-set-1", point)
    plan = local.clone_plan(req)
    argv = plan.command.split()
    assert "--type=immediate" in argv and f"--set={source.full_label}" in argv
    assert plan.steps[0].startswith(f"Restore backup set {source.full_label} from walrus's repo1")

    done = run_clone(local, req).last
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    gazelle = target("gazelle")
    assert local.sql(gazelle, "select count(*) from users", database="walrus") == [(1000,)]
    assert "after_full" not in tables(local, gazelle, "walrus")
    assert "after_full" in tables(local, src, "walrus")


# -- 3. a target past the archived WAL -------------------------------------------------------------


def test_a_target_after_the_last_archived_wal_fails_clearly(
    local: LocalPlatform, source: Source
) -> None:
    src = source.ref
    flush_wal(local, src)
    ((future,),) = local.sql(src, "select clock_timestamp()")  # nothing after it is archived
    req = request(source, "moose", "op-future-1", RestoreTarget(kind="time", time=future))
    run = run_clone(local, req, timeout=120)
    failed = run.last
    assert failed.state == "failed"
    assert "after the last archived transaction in walrus's repo1" in failed.message
    assert "recovery ended before configured recovery target was reached" in failed.message
    assert "FATAL" in failed.detail
    status = local.cluster_status(target("moose"))
    assert (status.state, status.role) == ("failed", "shutdown")
    assert "recovery ended before" in status.message
    # Terminal: asking again starts nothing.
    log = local.fleet_dir / "pglog/moose.log"
    starts = log_count(log, "starting PostgreSQL")
    assert local.clone_advance(req) == JobStatus("failed", failed.message, detail=failed.detail)
    assert log_count(log, "starting PostgreSQL") == starts == 1

    local.cluster_destroy(target("moose"))
    assert not local.cluster_exists(target("moose"))
    assert list(local.fleet_dir.rglob("*moose*")) == []


def test_a_target_before_the_oldest_backup_fails_at_the_restore(
    local: LocalPlatform, source: Source
) -> None:
    (repo,) = local.repos(source.ref)
    early = repo.backups[0].started_at - dt.timedelta(hours=1)
    req = request(source, "yak", "op-early-1", RestoreTarget(kind="time", time=early))
    failed = run_clone(local, req, timeout=60).last
    assert failed.state == "failed"
    assert failed.message.startswith("The restore failed. pgBackRest failed: [075]")
    assert "unable to find backup set with stop time less than" in failed.message
    assert not (local.fleet_dir / "pglog/yak.log").exists(), "nothing to start"
    local.cluster_destroy(target("yak"))
    assert list(local.fleet_dir.rglob("*yak*")) == []


# -- 4. a half-made clone can be destroyed ---------------------------------------------------------


def test_destroying_a_clone_mid_restore_removes_everything(
    local: LocalPlatform, source: Source
) -> None:
    # A call that died between making the cluster directory and writing the record.
    leftover = local.fleet_dir / "clusters/tapir"
    leftover.mkdir()
    owner = os.stat(local.fleet_dir / "data/walrus")
    os.chown(leftover, owner.st_uid, owner.st_gid)
    req = request(source, "tapir", "op-tapir-1", RestoreTarget(kind="latest"))
    # The first call reserves the name and launches the restore, with nothing in between.
    launched = "Started pgBackRest: restore of walrus's repo1 into tapir."
    assert local.clone_advance(req) == JobStatus("running", launched)
    job = json.loads((local.fleet_dir / "jobs/tapir/op-tapir-1-restore.json").read_text())
    assert job["pid"]
    assert local.cluster_status(target("tapir")).state == "restoring"
    local.cluster_destroy(target("tapir"))
    assert not process_alive(job["pid"], job["pid_start"])
    assert not local.cluster_exists(target("tapir"))
    assert list(local.fleet_dir.rglob("*tapir*")) == []


def test_concurrent_first_calls_reserve_the_name_and_launch_the_restore_once(
    local: LocalPlatform, source: Source
) -> None:
    req = request(source, "ibex", "op-ibex-1", RestoreTarget(kind="latest"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: local.clone_advance(req), range(4)))
    assert {s.state for s in statuses} == {"running"}, statuses
    launched = [s for s in statuses if s.message.startswith("Started pgBackRest: restore")]
    assert len(launched) == 1, statuses
    # The others found the launch under way or done: none stopped at the name's reservation.
    following = ("Another call is advancing this clone.", "pgBackRest is restoring")
    assert all(s.message.startswith(following) for s in statuses if s not in launched), statuses
    jobs = local.fleet_dir / "jobs/ibex"
    assert sorted(p.name for p in jobs.glob("*.json")) == ["op-ibex-1-restore.json"]
    job = json.loads((jobs / "op-ibex-1-restore.json").read_text())
    local.cluster_destroy(target("ibex"))
    assert not process_alive(job["pid"], job["pid_start"])
    assert list(local.fleet_dir.rglob("*ibex*")) == []


# -- 5. the name is taken --------------------------------------------------------------------------


def test_a_foreign_cluster_or_leftover_with_the_target_name_is_never_touched(
    local: LocalPlatform, source: Source
) -> None:
    root = local.fleet_dir
    # A real cluster: the source itself.
    record_before = (root / "clusters/walrus/cluster.json").read_bytes()
    req = request(source, "walrus", "op-foreign-1", RestoreTarget(kind="latest"))
    status = local.clone_advance(req)
    assert status.state == "failed"
    assert "A cluster named walrus already exists" in status.message
    assert local.cluster_exists(source.ref)
    assert (root / "clusters/walrus/cluster.json").read_bytes() == record_before
    assert not list((root / "jobs/walrus").glob("op-foreign-1*"))
    assert local.cluster_status(source.ref).state == "ready"
    with pytest.raises(PermanentError):
        local.clone_plan(req)

    # Someone's data directory without a record.
    leftover = root / "data/okapi"
    leftover.mkdir()
    (leftover / "precious").write_text("keep me")
    try:
        assert local.cluster_exists(target("okapi"))
        okapi = request(source, "okapi", "op-okapi-1", RestoreTarget(kind="latest"))
        assert local.clone_advance(okapi).state == "failed"
        assert (leftover / "precious").read_text() == "keep me"
        assert not (root / "clusters/okapi").exists()
        assert [s.ref.name for s in local.clusters()].count("okapi") == 0
    finally:
        (leftover / "precious").unlink()
        leftover.rmdir()

    assert not local.cluster_exists(target("nobody"))
    assert not local.cluster_exists(ClusterRef("elsewhere", "walrus"))
    assert not local.cluster_exists(ClusterRef("local", "../data"))


def test_bad_requests_are_permanent_errors_and_change_nothing(
    local: LocalPlatform, source: Source
) -> None:
    latest = RestoreTarget(kind="latest")
    future = RestoreTarget(kind="time", time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    bad = [
        request(source, "okapi", "op bad", latest),
        request(source, "Okapi", "op-bad", latest),
        request(source, "okapi", "op-bad", future),
        request(source, "okapi", "op-bad", latest, db_include=("postgres",)),
        dataclasses.replace(request(source, "okapi", "op-bad", latest), repo="repo2"),
        dataclasses.replace(request(source, "okapi", "op-bad", latest), source=target("nobody")),
        dataclasses.replace(
            request(source, "okapi", "op-bad", latest), target=ClusterRef("x", "okapi")
        ),
    ]
    for req in bad:
        with pytest.raises(PermanentError):
            local.clone_plan(req)
        with pytest.raises(PermanentError):
            local.clone_advance(req)
    assert not local.cluster_exists(target("okapi"))


# -- 6. databases of a backup set ------------------------------------------------------------------


def test_backup_databases_lists_the_user_databases_of_a_set(
    local: LocalPlatform, source: Source
) -> None:
    names = local.backup_databases(source.ref, repo="repo1", label=source.full_label)
    assert names == ["reporting", "walrus"]
    for label in ("20200101-000000F", "not-a-label"):
        with pytest.raises(PermanentError):
            local.backup_databases(source.ref, repo="repo1", label=label)
    with pytest.raises(PermanentError):
        local.backup_databases(source.ref, repo="repo2", label=source.full_label)


# -- 7. --db-include -------------------------------------------------------------------------------


def test_db_include_restores_one_database_and_drops_the_others(
    local: LocalPlatform, source: Source
) -> None:
    req = request(
        source, "bison", "op-dbinc-1", RestoreTarget(kind="latest"), db_include=("reporting",)
    )
    plan = local.clone_plan(req)
    assert "--db-include=reporting" in plan.command.split()
    assert "Drop the databases of bison that were not included" in plan.steps
    done = run_clone(local, req).last
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert done.result["dropped_databases"] == "walrus"
    assert "Dropped the databases not included: walrus" in done.message
    bison = target("bison")
    rows = local.sql(bison, "select datname from pg_database order by datname")
    assert [name for (name,) in rows] == ["postgres", "reporting", "template0", "template1"]
    assert local.sql(bison, "select count(*) from daily_signups", database="reporting") == [(30,)]
    # The dropped database is still whole on the source.
    assert local.sql(source.ref, "select count(*) from users", database="walrus") == [(1000,)]


def test_finished_clones_are_ordinary_clusters_of_the_run_as_user(
    local: LocalPlatform, source: Source
) -> None:
    """Runs after the clones above (those that ran): each is listed as a ready primary, and
    every file the clones made belongs to the run-as user."""
    finished = ("elephant", "rhino", "gazelle", "bison")
    listed = {s.ref.name: (s.role, s.state) for s in local.clusters()}
    for name in finished:
        assert listed.get(name, ("primary", "ready")) == ("primary", "ready")
    uid = os.stat(local.fleet_dir / "data/walrus").st_uid
    made = [p for p in local.fleet_dir.rglob("*") if any(n in str(p) for n in finished)]
    assert [p for p in made if p.lstat().st_uid != uid] == []
