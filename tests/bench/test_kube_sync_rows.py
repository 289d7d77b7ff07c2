"""How kube_sync turns its counts into rows: the steady state's execs and SQL queries must be
the same at 100 and 1,000 clusters (the first sync reads every cluster by design)."""

from __future__ import annotations

from collections import Counter

from bench.benchmarks import kube_sync
from bench.benchmarks.kube_sync import EXEC, Change, Measured
from bench.framework import INFO, MISSED, PASS

LISTS = Counter({("list", "postgresclusters"): 1, ("list", "pods"): 1})


def measured(size: int, *, steady_execs: int = 0, queries: int = 3) -> Measured:
    return Measured(
        clusters_ms=[90.0], lists_ms=[60.0], clusters_calls=LISTS, first_s=size / 100,
        first_calls=LISTS + Counter({EXEC: 2 * size}), repos_s=size / 300,
        first_queries=14 * size, steady_s=[0.2], steady_calls=LISTS + Counter({EXEC: steady_execs}),
        queries=queries,
    )


def test_a_count_must_be_the_same_at_both_sizes() -> None:
    row = kube_sync.count_row("sync", "SQL queries", 3, 3, (100, 1000), "queries")
    assert (row.median, row.baseline, row.goal, row.status) == (
        3, 3, "same at 100 and 1,000 clusters", PASS)
    assert kube_sync.count_row("sync", "SQL queries", 3, 30, (100, 1000), "q").status == MISSED


def test_the_exec_row_judges_the_steady_state_and_lists_the_other_syncs() -> None:
    changes = [Change(total_s=0.25, watch_s=0.001, calls=LISTS + Counter({EXEC: 2}))]
    both = {100: measured(100), 1000: measured(1000)}

    row = kube_sync.execs_row(both, changes, [0, 0, 0, 0, 1, 201, 199])

    assert (row.median, row.baseline, row.status) == (0, 0, PASS)
    assert row.note == (
        "first sync 200 at 100 and 2,000 at 1,000 clusters (2 per cluster); steady state 0 "
        "and 0; one cluster's finished backup 2; renewal at DR_REPO_MAX_AGE at most 402 in "
        "one sync at 1,000")
    both[1000] = measured(1000, steady_execs=6)
    assert kube_sync.execs_row(both, changes, [0, 201]).status == MISSED


def test_the_table_has_one_row_per_figure() -> None:
    changes = [Change(0.25, 0.001, LISTS + Counter({EXEC: 2}))] * 3
    rows = kube_sync.rows({100: measured(100), 1000: measured(1000, queries=3)}, changes,
                          (21.3, 2.7, 8), [0, 0, 201])
    judged = {(r.name, r.metric): r.status for r in rows if r.status != INFO}
    assert judged == {
        ("KubernetesPlatform.clusters()", "API calls"): PASS,
        ("inventory.platform_sync(kubernetes), steady state", "API calls"): PASS,
        ("inventory.platform_sync(kubernetes), steady state", "SQL queries"): PASS,
        ("Pod execs per sync, steady state", "pod execs"): PASS,
    }
    pool = rows[-1]
    assert (pool.median, pool.baseline, round(pool.ratio or 0, 2)) == (2.7, 21.3, 0.13)
