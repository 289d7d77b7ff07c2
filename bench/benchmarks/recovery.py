"""Recovery: a clone / PITR through the console against the same restore typed by hand.

One throwaway local fleet (real PostgreSQL 15 + pgBackRest) with a pgbench database, a full
backup, then a few seconds of pgbench whose middle is the PITR target T. In each run, for
`latest` and for T, interleaved (which goes first flips every run):

- by hand: the console's own restore command (LocalPlatform.clone_plan) into a fresh directory,
  `pg_ctl start`, then ask every 20 ms until it accepts connections and is out of recovery;
- the console: the wizard's services create the clone operation (the click is draft_submit),
  then reconcile.advance runs in this process in a loop honouring next_check_at, as the
  worker's countdown would. No Celery: its dispatch adds milliseconds, the polls the steps ask
  for add seconds. "Until writable" ends at the event recording the promotion; "until done"
  also includes the clone's own stanza and first full backup (PGO takes one too).

Plus the disk: `dd` write (conv=fdatasync) and O_DIRECT read of the data set's size, and
pgBackRest's restore throughput with --process-max 1 and 2 as a fraction of the dd write.

Goal (issue #5): console until writable ≤ 1.10 × by hand at 1 GB (--full); at the --quick size
the gap in seconds is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from bench.benchmarks import support_console as console
from bench.benchmarks import support_local as local
from bench.framework import INFO, MISSED, PASS, BenchError, Context, Row, median, ratio
from bench.registry import register

SCHEMA = "bench_recovery"
SCALE = {"quick": 5, "full": 65}  # pgbench -s: ~75 MiB and ~1 GiB of files
WAL_SECONDS = {"quick": 4, "full": 6}  # pgbench after the backup; T is half-way through
GOAL_RATIO = 1.10
MiB = 2**20


@dataclasses.dataclass(frozen=True)
class ConsoleRun:
    writable_s: float  # click → the event recording the promotion
    done_s: float  # click → the operation succeeded (its stanza and first backup included)
    launch_s: float  # click → pgBackRest restore launched
    restore_s: float  # the restore job, launch → its rc file
    start_delay_s: float  # restore ended → server started
    replay_s: float | None  # server started → promoted, by the server's log
    seen_s: float | None  # promoted by the server's log → the console recorded it
    steps: int = 0  # reconcile.advance calls until writable
    step_s: float = 0.0  # the time they took together (the rest is waiting for next_check_at)


@dataclasses.dataclass
class Samples:
    hand: dict[str, list[local.HandRun]] = dataclasses.field(default_factory=dict)
    console: dict[str, list[ConsoleRun]] = dataclasses.field(default_factory=dict)
    disk: list[local.DiskRun] = dataclasses.field(default_factory=list)
    pm: dict[int, list[local.HandRun]] = dataclasses.field(default_factory=dict)


@register("recovery", title="Recovery: console clone/PITR against pgBackRest by hand", order=10)
def recovery(ctx: Context) -> list[Row]:
    runs = ctx.samples(quick=1, full=5)
    scale, wal_seconds = SCALE[ctx.mode], WAL_SECONDS[ctx.mode]
    from restores.platforms.targets import RestoreTarget

    with console.live_schema(SCHEMA), local.bench_fleet("drc-bench-rec-") as bf, \
            _console_on(bf), console.no_dispatch():
        facts = _seed(ctx, bf, scale=scale, wal_seconds=wal_seconds)
        points = {"latest": RestoreTarget(), "time": RestoreTarget(kind="time", time=facts["T"])}
        samples = Samples()
        for i in range(1, runs + 1):
            ctx.log(f"recovery run {i}/{runs}")
            order = list(points.items()) if i % 2 else list(reversed(points.items()))
            for variant, point in order:
                pair = [("hand", variant, point), ("console", variant, point)]
                for who, name, pt in (pair if i % 2 else reversed(pair)):
                    os.sync()  # the previous restore's dirty pages are not this one's cost
                    if who == "hand":
                        samples.hand.setdefault(name, []).append(_hand(ctx, bf, name, pt, i))
                    else:
                        samples.console.setdefault(name, []).append(
                            _console(ctx, bf, name, pt, i))
            _disk(ctx, bf, samples, size=facts["bytes"], run=i)
    ctx.info["recovery_data"] = facts["describe"]
    return rows(samples, facts, full=not ctx.quick)


@contextlib.contextmanager
def _console_on(bf: local.BenchFleet) -> Iterator[None]:
    from restores import platforms

    platforms.override("local", bf.platform)
    try:
        yield
    finally:
        platforms.override("local", None)


def _seed(ctx: Context, bf: local.BenchFleet, *, scale: int, wal_seconds: int) -> dict[str, Any]:
    """The source cluster: pgbench -s scale, a full backup, then pgbench for wal_seconds with
    T half-way, a WAL switch, and the console's inventory of it."""
    from restores import inventory

    ref = bf.ref("src")
    t0 = time.perf_counter()
    bf.platform.cluster_create("src")
    ctx.log(f"pgbench -i -s {scale}")
    local.pgbench_init(bf, "src", scale=scale)
    seed_s = time.perf_counter() - t0
    pgdata = bf.fleet.pgdata("src")
    # What a restore writes: the data files, not the WAL pgbench -i left in pg_wal.
    size = local.disk_bytes(pgdata) - local.disk_bytes(pgdata / "pg_wal")
    ctx.log(f"full backup of {size / MiB:,.0f} MiB")
    t1 = time.perf_counter()
    job = bf.platform.backup_wait(ref, repo="repo1", backup_type="full",
                                  operation_id="bench-base", timeout=3600)
    if job.state != "succeeded":
        raise BenchError(f"the base backup failed: {job.message}\n{job.detail[-2000:]}")
    backup_s = time.perf_counter() - t1
    stop = bf.platform.repos(ref)[0].backups[-1].stopped_at
    ((lsn0,),) = bf.platform.sql(ref, "select pg_current_wal_lsn()::text")
    target = local.pgbench_load(bf, "src", seconds=wal_seconds)
    ((wal,),) = bf.platform.sql(
        ref, f"select pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')::bigint")
    if (target - stop).total_seconds() < 1:
        raise BenchError(f"T {target} is less than 1 s after the backup stop {stop}")
    local.switch_wal_and_wait_archived(bf, "src")
    result = inventory.platform_sync(platform_name="local")
    if result.errors:
        raise BenchError(f"inventory of the bench fleet failed: {result.errors}")
    after = (target - stop).total_seconds()
    describe = (f"pgbench -s {scale}, {size / MiB:,.0f} MiB of data files, "
                f"{int(wal) / MiB:,.0f} MiB of WAL after the backup; "
                f"T = backup stop + {after:.0f} s")
    ctx.log(describe)
    return {"T": target, "bytes": size, "wal": int(wal), "seed_s": seed_s, "backup_s": backup_s,
            "scale": scale, "describe": describe}


def _hand(ctx: Context, bf: local.BenchFleet, variant: str, point: Any, run: int) -> local.HandRun:
    result = local.by_hand(bf, source="src", point=point, target=f"h{run}-{variant}")
    ctx.log(f"  by hand {variant}: restore {result.restore_s:.1f} s + start→writable "
            f"{result.start_to_writable_s:.1f} s")
    return result


def _console(ctx: Context, bf: local.BenchFleet, variant: str, point: Any, run: int) -> ConsoleRun:
    from restores.models import Cluster

    name = f"c{run}-{variant}"
    source = Cluster.objects.get(platform="local", namespace=local.NAMESPACE, name="src")
    op, clicked = console.clone_submit(source=source, point=point, target=name,
                                       namespace=local.NAMESPACE)
    op, steps = console.drive(str(op.pk), timeout=3600)
    if op.status != "succeeded":
        raise BenchError(f"the console's clone {name} ended {op.status}: {op.error_reason}")
    phases = console.clone_phases(clicked, console.operation_events(op),
                                  op.finished_at.timestamp())
    progress = json.loads((bf.fleet.cluster_dir(name) / "clone.json").read_text())
    promoted = local.promotion_time(bf.fleet.server_log(name).read_text(errors="replace"))
    bf.platform.cluster_destroy(bf.ref(name))
    if phases.promoted is None:
        raise BenchError(f"the clone {name} has no event recording its promotion")
    result = console_run(clicked, phases, progress, promoted.timestamp() if promoted else None)
    until = [seconds for started, seconds in steps if started < clicked + result.writable_s]
    result = dataclasses.replace(result, steps=len(until), step_s=sum(until))
    ctx.log(f"  console {variant}: writable {result.writable_s:.1f} s, done "
            f"{result.done_s:.1f} s (launch +{result.launch_s:.1f} s, restore "
            f"{result.restore_s:.1f} s)")
    return result


def console_run(clicked: float, phases: console.ClonePhases, progress: dict[str, Any],
                promoted_at: float | None) -> ConsoleRun:
    """One console clone's figures from its events, its clone.json progress (epoch seconds
    written by the platform) and the promotion time in its server log."""
    restore = progress["restore"]
    started = progress["start"]["at"]
    assert phases.promoted is not None
    seen = progress.get("promoted_at")
    return ConsoleRun(
        writable_s=phases.promoted,
        done_s=phases.done,
        launch_s=restore["started_at"] - clicked,
        restore_s=restore["ended_at"] - restore["started_at"],
        start_delay_s=started - restore["ended_at"],
        replay_s=promoted_at - started if promoted_at else None,
        seen_s=seen - promoted_at if promoted_at and seen else None,
    )


def _disk(ctx: Context, bf: local.BenchFleet, samples: Samples, *, size: int, run: int) -> None:
    from restores.platforms.targets import RestoreTarget

    os.sync()
    disk = local.dd_throughput(bf.root, size)
    samples.disk.append(disk)
    for pm in (1, 2):
        os.sync()
        hand = local.by_hand(bf, source="src", point=RestoreTarget(), target=f"tp{run}-{pm}",
                             process_max=pm, start=False)
        samples.pm.setdefault(pm, []).append(hand)
    ctx.log(f"  dd write {disk.size / MiB / disk.write_s:,.0f} MiB/s, read "
            f"{disk.size / MiB / disk.read_s:,.0f} MiB/s; restore pm=1 "
            f"{samples.pm[1][-1].restore_s:.1f} s, pm=2 {samples.pm[2][-1].restore_s:.1f} s")


# -- the table -----------------------------------------------------------------------------------

VARIANTS = {"latest": "latest", "time": "PITR to T"}


def rows(samples: Samples, facts: dict[str, Any], *, full: bool) -> list[Row]:
    out = [
        Row(name="Recovery data set", metric="seed time", median=round(facts["seed_s"], 1),
            unit="s", note=facts["describe"]),
        Row(name="Source full backup (gz, process-max 1)", metric="backup time",
            median=round(facts["backup_s"], 1), unit="s",
            note=f"{facts['bytes'] / MiB:,.0f} MiB of data files"),
    ]
    for variant, words in VARIANTS.items():
        hand, ours = samples.hand[variant], samples.console[variant]
        out += variant_rows(words, hand, ours, full=full)
    out += disk_rows(samples)
    return out


def _spread(values: Sequence[float]) -> str:
    return f"n={len(values)}, {min(values):.1f}–{max(values):.1f} s" if len(values) > 1 else ""


def variant_rows(words: str, hand: Sequence[local.HandRun], ours: Sequence[ConsoleRun], *,
                 full: bool) -> list[Row]:
    """By hand, console until writable (the goal) and console until done, for one variant."""
    base = median([h.total_s for h in hand])
    writable = [c.writable_s for c in ours]
    done = [c.done_s for c in ours]
    med = median(writable)
    gap = med - base
    overhead = (f"launch +{median([c.launch_s for c in ours]):.1f} s, restore end→start "
                f"+{median([c.start_delay_s for c in ours]):.1f} s")
    seen = [c.seen_s for c in ours if c.seen_s is not None]
    if seen:
        overhead += f", promotion seen +{median(seen):.1f} s"
    if any(c.steps for c in ours):
        overhead += (f"; {median([c.steps for c in ours]):.0f} steps took "
                     f"{median([c.step_s for c in ours]):.2f} s together")
    hand_note = (f"restore {median([h.restore_s for h in hand]):.1f} s + start→writable "
                 f"{median([h.start_to_writable_s or 0.0 for h in hand]):.1f} s")
    replay = [c.replay_s for c in ours if c.replay_s is not None]
    console_note = (f"gap {gap:+.1f} s: restore {median([c.restore_s for c in ours]):.1f} s, "
                    + (f"start→promoted {median(replay):.1f} s, " if replay else "") + overhead)
    goal = f"≤ {GOAL_RATIO:.2f}× by hand" + ("" if full else " (at 1 GB, --full)")
    r = ratio(med, base)
    return [
        Row(name=f"By hand: restore + start until writable, {words}", metric="wall time",
            median=base, unit="s", n=len(hand), note="; ".join(
                x for x in (hand_note, _spread([h.total_s for h in hand])) if x)),
        Row(name=f"Console until writable primary, {words}", metric="wall time", median=med,
            unit="s", baseline=base, ratio=r, goal=goal, n=len(ours),
            status=(PASS if r is not None and r <= GOAL_RATIO else MISSED) if full else INFO,
            note="; ".join(x for x in (console_note, _spread(writable)) if x)),
        Row(name=f"Console until done (incl. first backup), {words}", metric="wall time",
            median=median(done), unit="s", baseline=base, ratio=ratio(median(done), base),
            n=len(ours), note=f"stanza-create + its own first full backup after the promotion "
                              f"+{median(done) - med:.1f} s"),
    ]


def disk_rows(samples: Samples) -> list[Row]:
    disk = samples.disk
    size = disk[0].size
    write = median([d.size / MiB / d.write_s for d in disk])
    read = median([d.size / MiB / d.read_s for d in disk])
    out = [
        Row(name=f"Disk: dd write {size / MiB:,.0f} MiB, conv=fdatasync", metric="throughput",
            median=write, unit="MiB/s", n=len(disk)),
        Row(name=f"Disk: dd read {size / MiB:,.0f} MiB, O_DIRECT", metric="throughput",
            median=read, unit="MiB/s", n=len(disk)),
    ]
    for pm, runs in sorted(samples.pm.items()):
        mib_s = median([h.restored_bytes / MiB / h.restore_s for h in runs])
        out.append(Row(
            name=f"pgBackRest restore by hand, --process-max={pm}", metric="throughput",
            median=mib_s, unit="MiB/s", baseline=write, ratio=ratio(mib_s, write), n=len(runs),
            note=f"{median([h.restore_s for h in runs]):.1f} s for "
                 f"{runs[0].restored_bytes / MiB:,.0f} MiB restored; ratio = fraction of dd write",
        ))
    return out
