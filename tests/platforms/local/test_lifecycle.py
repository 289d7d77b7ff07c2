"""Integration tests of the operations on an existing local cluster, against real
PostgreSQL 15 and pgBackRest: in-place restore (PITR, --db-include), a standby fed from a
repo, and its promotion.

Two module clusters: `otter` (restored in place, twice) and `seal` (the source of the
standby `sealsb`). Each has the demo data and one full backup.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restores.platforms.base import (
    FORMER_PRIMARY,
    CloneRequest,
    ClusterRef,
    InPlaceRestoreRequest,
    PermanentError,
    StandbyRequest,
)
from restores.platforms.local import LocalPlatform
from restores.platforms.targets import RestoreTarget
from tests.platforms.local.helpers import drive, flush_wal, tables, wait_until_after

pytestmark = pytest.mark.integration

CLUSTERS = ("otter", "seal", "sealsb", "otterclone")


def ref(name: str) -> ClusterRef:
    return ClusterRef("local", name)


@dataclasses.dataclass(frozen=True)
class Source:
    ref: ClusterRef
    full_label: str


def _with_full_backup(local: LocalPlatform, name: str) -> Source:
    cluster = local.cluster_create(name).ref
    local.load_demo_data(cluster)
    full = local.backup_wait(cluster, repo="repo1", backup_type="full", operation_id=f"{name}-full")
    assert full.state == "succeeded", full.message
    return Source(cluster, full.result["label"])


@pytest.fixture(scope="module")
def clusters(local: LocalPlatform) -> Iterator[dict[str, Source]]:
    try:
        yield {name: _with_full_backup(local, name) for name in ("otter", "seal")}
    finally:
        for name in CLUSTERS:
            if (local.fleet_dir / "clusters" / name / "cluster.json").exists():
                local.cluster_destroy(ref(name))


def fresh(local: LocalPlatform) -> LocalPlatform:
    """Another process's view: a new platform object on the same fleet."""
    return LocalPlatform(
        fleet_dir=local.fleet_dir,
        run_as=local.run_as,
        namespace=local.namespace,
        port_base=local.port_base,
    )


def count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def history_files(local: LocalPlatform, name: str) -> list[str]:
    archive = local.fleet_dir / "repos" / name / "repo1" / "archive" / "db"
    return sorted(p.name.split(".")[0] for p in archive.glob("*/*.history*"))


def auto_conf(local: LocalPlatform, name: str) -> str:
    return (local.fleet_dir / "data" / name / "postgresql.auto.conf").read_text()


# -- 1. in-place PITR ------------------------------------------------------------------------------


def test_in_place_pitr_brings_back_a_dropped_table_on_a_new_timeline(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    otter, root = clusters["otter"].ref, local.fleet_dir
    (before,) = local.repos(otter)
    # A time target must be after the stop second of the backup it starts from ([075]).
    wait_until_after(local, otter, before.backups[-1].stopped_at + dt.timedelta(seconds=1))
    assert local.sql(otter, "select count(*) from users", database="otter") == [(1000,)]
    ((point,),) = local.sql(otter, "select clock_timestamp()")
    local.sql(otter, "drop table users", database="otter")
    local.sql(otter, "create table later (x int)", database="otter")
    local.sql(otter, "insert into later values (42)", database="otter")
    flush_wal(local, otter)

    req = InPlaceRestoreRequest(
        operation_id="op-inplace-1",
        cluster=otter,
        repo="repo1",
        point=RestoreTarget(kind="time", time=point),
    )
    # Four calls at once: one stops the cluster and launches the restore, the others see
    # the lock and report.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        first = list(pool.map(lambda _: local.restore_in_place_advance(req), range(4)))
    assert {s.state for s in first} == {"running"}
    job = json.loads((root / "jobs/otter/op-inplace-1-in-place-restore.json").read_text())
    argv = job["command"].split()
    assert argv[:3] == [
        "/usr/bin/pgbackrest",
        f"--config={root}/clusters/otter/pgbackrest.conf",
        "--stanza=db",
    ]
    assert "--type=time" in argv and "--target-action=promote" in argv
    assert "--delta" in argv and argv[-1] == "restore"
    assert not any(a.startswith(("--pg1-path", "--archive-mode")) for a in argv)

    # While it runs the cluster is owned by the restore: no shutdown, start, or second
    # restore; its status says so.
    status = local.cluster_status(otter)
    assert status.state == "restoring", status
    for shutdown in (True, False):
        with pytest.raises(PermanentError, match="being restored in place by operation"):
            local.power_advance(otter, operation_id="op-power-x", shutdown=shutdown)
    with pytest.raises(PermanentError, match="busy with operation op-inplace-1"):
        local.restore_in_place_advance(dataclasses.replace(req, operation_id="op-inplace-x"))

    # The process "dies": a fresh platform object carries on, each step asked twice.
    seen = drive(lambda: fresh(local).restore_in_place_advance(req), calls_per_poll=2)
    done = seen[-1]
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert set(done.result) == {
        "timeline",
        "restore_seconds",
        "recovery_seconds",
        "downtime_seconds",
        "dropped_databases",
    }
    assert done.result["timeline"] == "2"
    assert float(done.result["restore_seconds"]) > 0
    assert float(done.result["recovery_seconds"]) > 0
    assert done.result["dropped_databases"] == ""
    assert "running as a primary on timeline 2" in done.message

    # The table is back with all its rows; what came after the target is gone.
    assert local.sql(otter, "select count(*) from users", database="otter") == [(1000,)]
    assert "later" not in tables(local, otter, "otter")
    assert local.sql(otter, "select pg_is_in_recovery()") == [(False,)]
    assert local.sql(otter, "select timeline_id from pg_control_checkpoint()") == [(2,)]
    assert (local.cluster_status(otter).role, local.cluster_status(otter).state) == (
        "primary",
        "ready",
    )
    # No recovery leftovers (pitfall 9).
    conf = auto_conf(local, "otter")
    assert "restore_command" not in conf and "recovery_target" not in conf

    # One restore launch, one server start; the new timeline archived into its own stanza.
    jobs = root / "jobs/otter"
    assert count(jobs / "op-inplace-1-in-place-restore.log", "restore command begin") == 1
    assert sorted(p.name for p in jobs.glob("op-inplace-1*")) == [
        "op-inplace-1-in-place-restore.json",
        "op-inplace-1-in-place-restore.log",
        "op-inplace-1-in-place-restore.rc",
        "op-inplace-1-in-place.progress",
    ]
    assert history_files(local, "otter") == ["00000002"]
    segment = flush_wal(local, otter)
    assert segment.startswith("00000002")

    # A backup on the new timeline works (CHECKPOINT ran: no [058]).
    incr = local.backup_wait(otter, repo="repo1", backup_type="incr", operation_id="otter-incr")
    assert incr.state == "succeeded", f"{incr.message}\n{incr.detail}"
    assert local.cluster_status(otter).state == "ready"

    # Finished is finished: asking again reports the same and does nothing.
    assert local.restore_in_place_advance(req) == done
    assert count(jobs / "op-inplace-1-in-place-restore.log", "restore command begin") == 1


# -- 2. in-place --db-include ----------------------------------------------------------------------


def test_in_place_db_include_restores_one_database_and_drops_the_other(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    otter = clusters["otter"].ref
    ((before,),) = local.sql(otter, "select timeline_id from pg_control_checkpoint()")
    local.sql(otter, "insert into daily_signups values ('2001-01-01', 7)", database="reporting")
    flush_wal(local, otter)
    req = InPlaceRestoreRequest(
        operation_id="op-inplace-2",
        cluster=otter,
        repo="repo1",
        point=RestoreTarget(kind="latest"),
        db_include=("reporting",),
    )
    done = drive(lambda: local.restore_in_place_advance(req), calls_per_poll=2)[-1]
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert done.result["dropped_databases"] == "otter"
    assert "Dropped the databases not included: otter" in done.message
    # latest: all the WAL replayed, then promoted on the next timeline.
    assert done.result["timeline"] == str(before + 1)
    rows = local.sql(otter, "select datname from pg_database order by datname")
    assert [name for (name,) in rows] == ["postgres", "reporting", "template0", "template1"]
    assert local.sql(
        otter, "select signups from daily_signups where day = '2001-01-01'", database="reporting"
    ) == [(7,)]
    job = json.loads(
        (local.fleet_dir / "jobs/otter/op-inplace-2-in-place-restore.json").read_text()
    )
    argv = job["command"].split()
    assert "--db-include=reporting" in argv and "--type=default" in argv
    assert "--target-action=promote" not in argv
    assert history_files(local, "otter")[-1] == f"{before + 1:08X}"


def test_a_database_name_not_in_the_set_is_refused_before_the_cluster_stops(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    """A typo in --db-include: pgBackRest would refuse it ([080]) only after the server was
    stopped. The platform reads the set's databases first: nothing stops, nothing changes."""
    otter = clusters["otter"].ref
    (inventory,) = local.repos(otter)
    newest = max(inventory.backups, key=lambda b: b.stopped_at).label
    req = InPlaceRestoreRequest(operation_id="op-inplace-typo", cluster=otter, repo="repo1",
                                point=RestoreTarget(kind="latest"), db_include=("hipo",),
                                db_set=newest)
    with pytest.raises(PermanentError) as refused:
        local.restore_in_place_advance(req)
    assert refused.value.message.startswith(f"hipo is not in backup set {newest} of otter's "
                                            "repo1, which holds: ")
    assert refused.value.message.endswith("Nothing was stopped or restored.")
    status = local.cluster_status(otter)
    assert (status.role, status.state) == ("primary", "ready"), status
    assert local.sql(otter, "select 1") == [(1,)]
    assert not (local.fleet_dir / "jobs/otter/op-inplace-typo-in-place.progress").exists()
    assert local._fleet.record("otter").busy is None  # type: ignore[union-attr]


def test_power_is_refused_while_a_clone_is_being_made(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    req = CloneRequest(
        operation_id="op-otterclone",
        source=clusters["otter"].ref,
        repo="repo1",
        target=ref("otterclone"),
        point=RestoreTarget(kind="latest"),
    )
    launched = local.clone_advance(req)
    assert launched.message == "Started pgBackRest: restore of otter's repo1 into otterclone."
    for shutdown in (True, False):
        with pytest.raises(PermanentError, match="clone still being made"):
            local.power_advance(ref("otterclone"), operation_id="op-p", shutdown=shutdown)
    with pytest.raises(PermanentError, match="still being made"):
        local.restore_in_place_advance(
            InPlaceRestoreRequest("op-ip", ref("otterclone"), "repo1", RestoreTarget())
        )
    local.cluster_destroy(ref("otterclone"))


# -- 3. a standby fed from the repo, and its promotion ---------------------------------------------


def standby_request(op: str = "op-standby-1", **kw) -> StandbyRequest:
    kw.setdefault("repo", "repo1")
    return StandbyRequest(operation_id=op, source=ref("seal"), target=ref("sealsb"), **kw)


def test_bad_standby_requests_are_refused(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    with pytest.raises(PermanentError, match="streaming standbys are not supported"):
        local.standby_advance(standby_request(repo=None, host="db.example", port=5432))
    with pytest.raises(PermanentError, match="repo2"):
        local.standby_advance(standby_request(repo="repo2"))
    with pytest.raises(PermanentError, match="no local cluster 'nobody'"):
        local.standby_advance(dataclasses.replace(standby_request(), source=ref("nobody")))
    with pytest.raises(PermanentError, match="not a standby"):
        local.promote_advance(ref("seal"), operation_id="op-promote-0")
    assert not local.cluster_exists(ref("sealsb"))


def test_a_standby_replays_its_source_repo_and_refuses_writes(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    seal, root = clusters["seal"].ref, local.fleet_dir
    (repo_before,) = local.repos(seal)
    req = standby_request()
    # The first call reserves the name and launches the restore; the next only follows it.
    first = local.standby_advance(req)
    assert first.message == "Started pgBackRest: standby restore of seal's repo1 into sealsb."
    assert json.loads((root / "jobs/sealsb/op-standby-1-restore.json").read_text())["pid"]
    assert not local.standby_advance(req).message.startswith("Started pgBackRest")
    # A fresh process carries on, each step asked twice.
    seen = drive(lambda: fresh(local).standby_advance(req), calls_per_poll=2)
    done = seen[-1]
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert "is a hot standby of seal" in done.message and "seal's repo1" in done.message
    sealsb = ref("sealsb")
    status = local.cluster_status(sealsb)
    assert (status.role, status.state) == ("standby", "ready"), status
    assert {s.ref.name: s.role for s in local.clusters()}["sealsb"] == "standby"

    record = json.loads((root / "clusters/sealsb/cluster.json").read_text())
    assert record["standby_of"]["source"] == "seal"
    assert record["standby_of"]["operation_id"] == "op-standby-1"
    job = json.loads((root / "jobs/sealsb/op-standby-1-restore.json").read_text())
    argv = job["command"].split()
    assert f"--config={root}/clusters/seal/pgbackrest.conf" in argv
    assert "--type=standby" in argv and "--archive-mode=off" in argv
    assert count(root / "jobs/sealsb/op-standby-1-restore.log", "restore command begin") == 1

    # It reads the source's archive and archives nothing itself.
    settings = local.sql(
        sealsb,
        "select current_setting('archive_mode'), current_setting('restore_command'), "
        "current_setting('port')",
    )
    ((archive_mode, restore_command, port),) = settings
    assert archive_mode == "off"
    assert f"--config={root}/clusters/seal/pgbackrest.conf" in restore_command
    assert "--stanza=db" in restore_command and "archive-get" in restore_command
    assert int(port) == int(done.result["port"]) == record["port"]
    assert not (root / "clusters/sealsb/pgbackrest.conf").exists()
    assert local.repos(sealsb) == []

    # A row written on the source shows up once its WAL is in the repo.
    local.sql(seal, "create table repl_probe (id int primary key)", database="seal")
    local.sql(seal, "insert into repl_probe values (1)", database="seal")
    flush_wal(local, seal)
    deadline = time.monotonic() + 60
    while "repl_probe" not in tables(local, sealsb, "seal") or not local.sql(
        sealsb, "select id from repl_probe", database="seal"
    ):
        assert time.monotonic() < deadline, "the row never reached the standby"
        time.sleep(0.5)
    assert local.sql(sealsb, "select id from repl_probe", database="seal") == [(1,)]

    # Read-only, no repo of its own, and no in-place restore.
    with pytest.raises(PermanentError, match="read-only transaction"):
        local.sql(sealsb, "insert into repl_probe values (99)", database="seal")
    with pytest.raises(PermanentError, match="standby"):
        local.backup_start(sealsb, repo="repo1", backup_type="full", operation_id="sb-full")
    with pytest.raises(PermanentError, match="is a standby"):
        local.restore_in_place_advance(
            InPlaceRestoreRequest("op-ip-sb", sealsb, "repo1", RestoreTarget())
        )
    with pytest.raises(PermanentError, match="itself a standby"):
        local.standby_advance(
            StandbyRequest("op-sb-sb", source=sealsb, target=ref("otterclone"), repo="repo1")
        )
    # The source's repo got nothing from the standby.
    (repo_after,) = local.repos(seal)
    assert [b.label for b in repo_after.backups] == [b.label for b in repo_before.backups]
    assert history_files(local, "seal") == []
    assert local.standby_advance(req) == done


def test_promotion_is_refused_while_the_source_runs_then_makes_an_independent_primary(
    local: LocalPlatform, clusters: dict[str, Source]
) -> None:
    seal, sealsb, root = clusters["seal"].ref, ref("sealsb"), local.fleet_dir
    if local.cluster_status(sealsb).role != "standby":
        pytest.skip("needs the standby of the previous test")

    refused = local.promote_advance(sealsb, operation_id="op-promote-1")
    assert refused.state == "failed"
    assert "seal is still running as a primary" in refused.message
    assert "split brain" in refused.message
    assert local.sql(sealsb, "select pg_is_in_recovery()") == [(True,)]
    assert local.cluster_status(sealsb).role == "standby"

    # A last commit that was never switched out: the shutdown switches WAL and the archiver
    # puts it in the repo before the server stops, so the promotion loses nothing.
    local.sql(seal, "insert into repl_probe values (2)", database="seal")
    down = drive(lambda: local.power_advance(seal, operation_id="op-seal-down", shutdown=True))
    assert down[-1].state == "succeeded", down[-1].message

    req_op = "op-promote-2"
    seen = drive(lambda: local.promote_advance(sealsb, operation_id=req_op), calls_per_poll=2)
    done = seen[-1]
    assert done.state == "succeeded", f"{done.message}\n{done.detail}"
    assert set(done.result) == {"port", "timeline", "promotion_seconds", "first_backup"}
    assert done.result["timeline"] == "2"
    assert float(done.result["promotion_seconds"]) >= 0

    assert local.sql(sealsb, "select pg_is_in_recovery()") == [(False,)]
    assert local.sql(sealsb, "select id from repl_probe order by id", database="seal") == [
        (1,),
        (2,),
    ]
    local.sql(sealsb, "insert into repl_probe values (3)", database="seal")
    status = local.cluster_status(sealsb)
    assert (status.role, status.state) == ("primary", "ready"), status

    # Its own stanza and repo: the first full backup there, its timeline archived there.
    conf = (root / "clusters/sealsb/pgbackrest.conf").read_text()
    assert f"repo1-path={root}/repos/sealsb/repo1\n" in conf
    assert f"pg1-path={root}/data/sealsb\n" in conf
    settings = local.sql(
        sealsb,
        "select current_setting('archive_mode'), current_setting('archive_command'), "
        "current_setting('restore_command')",
    )
    assert settings == [
        (
            "on",
            f"/usr/bin/pgbackrest --config={root}/clusters/sealsb/pgbackrest.conf --stanza=db "
            "archive-push %p",
            "",
        )
    ]
    assert "restore_command" not in auto_conf(local, "sealsb")
    (own,) = local.repos(sealsb)
    assert [(b.type, b.label) for b in own.backups] == [("full", done.result["first_backup"])]
    assert history_files(local, "sealsb") == ["00000002"]
    assert flush_wal(local, sealsb).startswith("00000002")
    incr = local.backup_wait(sealsb, repo="repo1", backup_type="incr", operation_id="sealsb-incr")
    assert incr.state == "succeeded", f"{incr.message}\n{incr.detail}"

    # One writer per stanza: the source's repo never got a timeline from the promoted
    # standby. Starting the old primary would make a second writable primary: refused
    # while sealsb runs as one, naming it; started only when acknowledged.
    assert history_files(local, "seal") == []
    with pytest.raises(PermanentError) as refused_start:
        local.power_advance(seal, operation_id="op-seal-up", shutdown=False)
    assert refused_start.value.message == FORMER_PRIMARY.format(cluster="seal",
                                                                promoted="sealsb")
    assert local.cluster_status(seal).role == "shutdown"
    up = drive(lambda: local.power_advance(seal, operation_id="op-seal-up", shutdown=False,
                                           acknowledge_split_brain=True))
    assert up[-1].state == "succeeded", up[-1].message
    # and it archives into its own stanza
    assert flush_wal(local, seal).startswith("00000001")
    assert history_files(local, "seal") == []
    (seal_repo,) = local.repos(seal)
    assert seal_repo.window.latest_wal.startswith("00000001")

    # Finished is finished; it is no standby any more.
    assert local.promote_advance(sealsb, operation_id=req_op) == done
    with pytest.raises(PermanentError, match="not a standby"):
        local.promote_advance(sealsb, operation_id="op-promote-3")
    assert count(root / "jobs/sealsb" / f"{req_op}-first-backup.log", "backup command begin") == 1
