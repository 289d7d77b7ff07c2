"""The pure helpers of the live benchmarks (recovery, visibility, kube_sync): reading server logs,
restore commands, operation events and the progress poll, and how their rows are judged.

Nothing here times anything or starts a server: the benchmarks' figures come from
`python -m bench`; these check what turns measurements into rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from bench.benchmarks import kube_sync, recovery, visibility
from bench.benchmarks import support_console as console
from bench.benchmarks import support_local as local
from bench.framework import INFO, MISSED, PASS
from restores.models import OperationEvent
from tests.factories import OperationFactory

# -- server logs and restore commands ---------------------------------------------------------

PROMOTED_LOG = """\
2026-11-25 00:24:12.101 UTC [4711] LOG:  starting PostgreSQL 15.20 on x86_64-pc-linux-gnu
2026-11-25 00:24:12.340 UTC [4711] LOG:  database system is ready to accept read-only connections
2026-11-25 00:24:13.002 UTC [4713] LOG:  restored log file "000000010000000000000007" from archive
2026-11-25 00:24:13.456 UTC [4713] LOG:  archive recovery complete
2026-11-25 00:24:13.789 UTC [4711] LOG:  database system is ready to accept connections
2026-11-25 00:24:20.500 UTC [4800] LOG:  database system is ready to accept connections
"""


def test_it_reads_the_promotion_from_the_first_ready_line_not_the_read_only_one() -> None:
    assert local.promotion_time(PROMOTED_LOG) == dt.datetime(
        2026, 11, 25, 0, 24, 13, 789000, tzinfo=dt.UTC)


def test_it_finds_no_promotion_in_a_server_still_in_recovery() -> None:
    assert local.promotion_time(PROMOTED_LOG.splitlines()[1] + "\n") is None
    assert local.promotion_time("") is None


def test_it_reads_the_target_directory_and_port_of_a_restore_command() -> None:
    argv = ["/usr/bin/pgbackrest", "--config=/f/clusters/src/pgbackrest.conf", "--stanza=db",
            "--repo=1", "--pg1-path=/f/data/h1-latest", "--type=default",
            "--archive-mode=off", "--recovery-option=port=60012", "restore"]
    assert local.restore_port(argv) == 60012
    assert str(local.restore_pgdata(argv)) == "/f/data/h1-latest"
    with pytest.raises(ValueError):
        local.restore_port(argv[:1])


def test_by_hand_counts_the_restore_and_the_start() -> None:
    run = local.HandRun(restore_s=3.0, start_to_writable_s=1.5, restored_bytes=1, command="")
    assert run.total_s == 4.5
    assert local.HandRun(2.0, None, 1, "").total_s == 2.0


# -- a console clone's timeline ---------------------------------------------------------------

CLICK = 1_000.0
EVENTS = [
    (1000.05, "Clone of src into c1-latest at the end of the archived WAL requested."),
    (1000.20, "Restore the newest backup from src's repo1 into a new data directory"),
    (1000.30, "Started pgBackRest: restore of src's repo1 into c1-latest."),
    (1000.60, "pgBackRest is restoring src's repo1 into c1-latest (pid 4711)."),
    (1004.10, "Started PostgreSQL c1-latest on port 60011; replaying WAL."),
    (1006.00, "c1-latest is promoted; making it independent next."),
]


def test_it_reads_the_phases_of_a_clone_from_its_events() -> None:
    phases = console.clone_phases(CLICK, EVENTS, finished=1018.0)
    assert phases.restore_started == pytest.approx(0.3)
    assert phases.server_started == pytest.approx(4.1)
    assert phases.promoted == pytest.approx(6.0)
    assert phases.done == pytest.approx(18.0)
    assert console.clone_phases(CLICK, EVENTS[:4], finished=1003.0).promoted is None


def test_a_console_run_splits_the_gap_into_launch_detection_and_replay() -> None:
    phases = console.clone_phases(CLICK, EVENTS, finished=1018.0)
    progress = {"restore": {"started_at": 1000.25, "ended_at": 1003.75},
                "start": {"at": 1004.05}, "promoted_at": 1005.95}
    run = recovery.console_run(CLICK, phases, progress, promoted_at=1005.5)
    assert run.writable_s == pytest.approx(6.0) and run.done_s == pytest.approx(18.0)
    assert run.launch_s == pytest.approx(0.25)
    assert run.restore_s == pytest.approx(3.5)
    assert run.start_delay_s == pytest.approx(0.3)
    assert run.replay_s == pytest.approx(1.45)
    assert run.seen_s == pytest.approx(0.45)
    assert recovery.console_run(CLICK, phases, progress, promoted_at=None).replay_s is None


def _console(writable: float, done: float) -> recovery.ConsoleRun:
    return recovery.ConsoleRun(writable, done, 2.0, 5.0, 0.3, 1.0, 0.4)


@pytest.mark.parametrize(("writable", "full", "status"), [
    (10.9, True, PASS), (11.1, True, MISSED), (30.0, False, INFO)])
def test_the_recovery_goal_is_judged_on_the_ratio_at_full_size_only(
    writable: float, full: bool, status: str
) -> None:
    hand = [local.HandRun(8.0, 2.0, 2**30, "")]
    by_hand, until_writable, until_done = recovery.variant_rows(
        "latest", hand, [_console(writable, 40.0)], full=full)
    assert (by_hand.median, by_hand.status) == (10.0, INFO)
    assert until_writable.baseline == 10.0
    assert until_writable.ratio == pytest.approx(writable / 10.0)
    assert until_writable.status == status
    assert until_writable.note.startswith(f"gap {writable - 10.0:+.1f} s")
    assert (until_done.median, until_done.status) == (40.0, INFO)


def test_restore_throughput_is_a_fraction_of_the_dd_write() -> None:
    samples = recovery.Samples(
        disk=[local.DiskRun(size=400 * 2**20, write_s=1.0, read_s=0.5)],
        pm={1: [local.HandRun(4.0, None, 400 * 2**20, "")],
            2: [local.HandRun(2.0, None, 400 * 2**20, "")]})
    write, read, pm1, pm2 = recovery.disk_rows(samples)
    assert (write.median, read.median) == (400.0, 800.0)
    assert (pm1.median, pm1.ratio) == (100.0, 0.25)
    assert (pm2.median, pm2.ratio) == (200.0, 0.5)


# -- the progress poll --------------------------------------------------------------------------


def test_it_reads_the_progress_region_the_operation_page_renders(client, settings) -> None:  # type: ignore[no-untyped-def]
    op = OperationFactory(status="running", version=7)
    OperationEvent.objects.create(operation=op, step="backing_up", message="pgBackRest is running")
    response = client.get(op.get_absolute_url(), headers={"HX-Request": "true"})
    progress = console.parse_progress(response.content.decode())
    assert progress == console.Progress("running", 7, ("pgBackRest is running",),
                                        settings.DR_OPERATION_POLL_INTERVAL)
    assert console.page_poll(client, op.get_absolute_url()) == settings.DR_OPERATION_POLL_INTERVAL
    assert client.get(f"{op.get_absolute_url()}?v=7", headers={"HX-Request": "true"}
                      ).status_code == 204
    op.status = "succeeded"
    op.save()
    done = console.parse_progress(client.get(op.get_absolute_url()).content.decode())
    assert (done.status, done.version, done.every_s) == ("succeeded", None, None)  # no polls


def test_it_points_another_process_at_a_schema() -> None:
    url = console.schema_url("postgres://postgres:pw@127.0.0.1:5432/dr_console_bench", "b_x")
    assert url == ("postgres://postgres:pw@127.0.0.1:5432/dr_console_bench"
                   "?options=-c%20search_path%3Db_x")


def test_the_visibility_goal_is_one_poll_plus_half_a_second() -> None:
    def seen(lag: float, page_poll: float = 2.0) -> list[visibility.Seen]:
        return [visibility.Seen(lag_s=lag, worker_s=lag - 0.05, floor_s=0.02,
                                page_poll_s=page_poll)] * 3

    measured, browser = visibility.lag_rows("Backup", seen(0.3), change="rc", floor="one check")
    assert (measured.median, measured.status, browser.p95, browser.status) == (
        0.3, PASS, 2.3, PASS)
    measured, browser = visibility.lag_rows("Backup", seen(0.8), change="rc", floor="one check")
    assert (measured.status, browser.p95, browser.status) == (PASS, 2.8, MISSED)
    # The browser adds the page's own poll interval, whatever the page says it is.
    measured, browser = visibility.lag_rows("Backup", seen(0.8, page_poll=1.0), change="rc",
                                            floor="one check")
    assert (browser.name, browser.p95, browser.status) == (
        "Backup, browser polling every 1 s (worst case)", 1.8, PASS)
    assert visibility.lag_rows("Backup", seen(2.7), change="rc", floor="x")[0].status == MISSED


# -- API calls ------------------------------------------------------------------------------------


def test_api_calls_must_not_grow_with_the_fleet() -> None:
    lists = Counter({("list", "postgresclusters"): 1, ("list", "pods"): 1})
    row = kube_sync.calls_row("clusters()", lists, lists, (100, 1000))
    assert (row.median, row.baseline, row.status) == (2, 2, PASS)
    assert row.note == "at 1,000: 1 list pods, 1 list postgresclusters"
    grows = Counter({("get", "pods/exec"): 2000, ("list", "postgresclusters"): 1})
    small = Counter({("get", "pods/exec"): 200, ("list", "postgresclusters"): 1})
    row = kube_sync.calls_row("platform_sync", small, grows, (100, 1000))
    assert (row.median, row.baseline, row.status) == (2001, 201, MISSED)
    assert row.note.startswith("at 1,000: 2,000 get pods/exec, 1 list postgresclusters; at 100")


# -- the worker ----------------------------------------------------------------------------------

WORKER_LOG = """\
[2026-11-25 00:45:28,146: INFO/ForkPoolWorker-1] Task restores.advance_operation[2073e07e] \
succeeded in 0.17s: None
[2026-11-25 00:45:37,001: INFO/ForkPoolWorker-2] Task restores.sweep_operations[aa11] \
succeeded in 0.012s: 0
[2026-11-25 00:45:47,001: INFO/ForkPoolWorker-1] Task restores.sweep_operations[bb22] \
succeeded in 0.02s: 2
"""


def test_it_counts_the_operations_the_sweep_resumed() -> None:
    assert console.swept(WORKER_LOG) == 2
    assert console.swept("") == 0


def test_another_client_on_the_bench_redis_database_is_found() -> None:
    clients = [{"id": "7", "db": "15"}, {"id": "8", "db": "0"}, {"id": "9", "db": "15"}]
    assert console.foreign_clients(clients, me=7, db=15) == 1
    assert console.foreign_clients(clients, me=9, db=0) == 1
    assert console.foreign_clients(clients[:2], me=7, db=15) == 0


def test_a_run_recognises_the_schemas_of_other_runs_by_their_pid() -> None:
    assert console.schema_pid("bench_recovery_4711", "bench_recovery") == 4711
    assert console.schema_pid("bench_recovery", "bench_recovery") is None
    assert console.schema_pid("bench_recovery_x1", "bench_recovery") is None
    assert console.schema_pid("bench_fleet_100c_10000b_2000o", "bench_recovery") is None
