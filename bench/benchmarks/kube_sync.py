"""The Kubernetes fleet at 1,000 PostgresClusters: the inventory sync, the raw list, the watch.

The test API server (tests/kube, a real HTTP server the real `kubernetes` client talks to)
holds copies of a PostgresCluster the PGO emulator brought up and backed up (its leader pod
included, and the emulator's `pgbackrest info` / `repo-ls` answers through pod exec), seeded
through `server.store`. At 100 clusters, then at 1,000:

- `KubernetesPlatform.clusters()`, timed against the two bare list calls it makes (the baseline);
- `restores.inventory.platform_sync(platform_name="kubernetes")` against a fresh schema of the
  bench database (the platform registry overridden with a KubernetesPlatform on the server's
  ApiClient): the first sync (no rows: every cluster's repos are read, two execs each), then
  the steady state (nothing changed, every stored answer fresh: no exec at all);
- the API calls and SQL queries of each: the steady state's must be the same at 100 and 1,000.

At 100 clusters, the pool: a sync that reads every cluster with each exec made 100 ms slower
(what an exec costs against a real API server), one cluster at a time and DR_SYNC_CONCURRENCY
at a time. At 1,000: a backup finishing on one cluster, from PGO's status write through the
watch to its set in the console's database (one platform_sync); and the renewal of answers
that reach DR_REPO_MAX_AGE, sync by sync, after a sync that read them all.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from bench.benchmarks import support_console as console
from bench.framework import INFO, MISSED, PASS, BenchError, Context, Row, median, p95, timed_row
from bench.registry import register

SCHEMA = "bench_kube"
NS = "db"
SIZES = (100, 1_000)
CLUSTER_LABEL = "postgres-operator.crunchydata.com/cluster"
ROLE_LABEL = "postgres-operator.crunchydata.com/role"
EXEC = ("get", "pods/exec")
SLOW_EXEC_S = 0.1  # the pool row: each exec this much slower, as against a real API server


@dataclasses.dataclass
class Measured:
    clusters_ms: list[float]
    lists_ms: list[float]  # the baseline: the two list calls clusters() makes, bare
    clusters_calls: Counter
    first_s: float  # the first sync: no rows, every cluster read
    first_calls: Counter
    repos_s: float  # of the first sync, spent in platform.repos() on all threads together
    first_queries: int  # SQL queries of the first sync
    steady_s: list[float]  # nothing changed, every answer fresh
    steady_calls: Counter
    queries: int  # SQL queries of one steady-state sync


@dataclasses.dataclass
class Change:
    """One cluster's backup finishing, seen through the watch and one platform_sync."""

    total_s: float  # PGO's status write → the new set's row in the console's database
    watch_s: float  # → the MODIFIED event delivered to watch_clusters' callback
    calls: Counter  # of the platform_sync


@register("kube_sync", title="Kubernetes fleet sync and watch at 1,000 clusters", order=40)
def kube_sync(ctx: Context) -> list[Row]:
    samples = ctx.samples(quick=5, full=20)
    syncs = 1 if ctx.quick else 3
    measured: dict[int, Measured] = {}
    with console.live_schema(SCHEMA), kube_fleet() as (server, emulator, platform), \
            _console_on(platform):
        for size in SIZES:
            grow(server, emulator, size)
            ctx.log(f"{size:,} PostgresClusters seeded")
            measured[size] = measure(ctx, server, platform, samples=samples, syncs=syncs)
            if size == SIZES[0]:
                pool = pool_effect(server)
                ctx.log(f"  every cluster read, exec +{SLOW_EXEC_S * 1000:.0f} ms: "
                        f"{pool[0]:.1f} s one at a time, {pool[1]:.1f} s in the pool")
        changes = change_lags(server, emulator, platform, samples=samples, size=SIZES[-1])
        wave = renewal_wave()
        ctx.log(f"  renewal over DR_REPO_MAX_AGE: clusters read per sync {wave}")
    return rows(measured, changes, pool, wave)


@contextlib.contextmanager
def kube_fleet() -> Iterator[tuple[Any, Any, Any]]:
    """The test API server with one PostgresCluster the PGO emulator created and backed up,
    and a KubernetesPlatform on it (namespace db)."""
    from restores.platforms.kubernetes import KubernetesPlatform
    from restores.platforms.kubernetes.api import USER_AGENT
    from tests.kube.apiserver import KubeServer
    from tests.kube.emulator import PgoEmulator
    from tests.kube.fixtures import HIPPO

    server = KubeServer().start()
    client = server.api_client()
    try:
        emulator = PgoEmulator(server)
        body = copy.deepcopy(HIPPO)
        body["metadata"]["namespace"] = NS
        server.store.create(body, validate=True)
        emulator.settle()
        if not emulator.backups.get((NS, "hippo")):
            raise BenchError("the PGO emulator took no backup of its first cluster")
        emulator.detach()  # copies of a ready cluster, as PGO left them
        client.user_agent = USER_AGENT
        yield server, emulator, KubernetesPlatform(namespaces=[NS], api_client=client)
    finally:
        client.close()
        server.stop()


@contextlib.contextmanager
def _console_on(platform: Any) -> Iterator[None]:
    from restores import platforms

    platforms.override("kubernetes", platform)
    try:
        yield
    finally:
        platforms.override("kubernetes", None)


def grow(server: Any, emulator: Any, size: int) -> None:
    """Copy the emulator's cluster (with its leader pod and backups) until there are `size`."""
    store = server.store
    model = store.get("postgresclusters", NS, "hippo")
    [leader] = store.list("pods", NS, label_selector=f"{CLUSTER_LABEL}=hippo,{ROLE_LABEL}")
    have = len(store.list("postgresclusters", NS))
    for n in range(have - 1, size - 1):
        name = f"pg{n:04d}"
        cluster = copy.deepcopy(model)
        cluster["metadata"] = {**model["metadata"], "name": name, "generation": 1}
        cluster["status"]["observedGeneration"] = 1
        store.put(cluster)
        pod = copy.deepcopy(leader)
        pod["metadata"]["name"] = f"{name}-00-abcd-0"
        pod["metadata"]["labels"][CLUSTER_LABEL] = name
        store.put(pod)
        # A list of its own: a backup taken on one copy must not show up on the others.
        emulator.backups[(NS, name)] = list(emulator.backups[(NS, "hippo")])


def counted(server: Any, work: Callable[[], Any]) -> tuple[float, Counter, Any]:
    """Seconds, API calls by (verb, resource), and the result of work()."""
    server.reset_calls()
    t0 = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - t0
    return seconds, Counter(server.calls), result


def sync(*, clusters: int, read: int | None) -> Any:
    """One platform_sync, checked: every cluster listed, `read` of them asked (None: any)."""
    from restores import inventory

    result = inventory.platform_sync(platform_name="kubernetes")
    if result.errors or result.clusters != clusters or read not in (None, result.repos_read):
        raise BenchError(f"platform_sync listed {result.clusters} clusters (expected "
                         f"{clusters}), read {result.repos_read} (expected {read}), errors "
                         f"{result.errors[:3]}")
    return result


def measure(ctx: Context, server: Any, platform: Any, *, samples: int,
            syncs: int) -> Measured:
    """clusters() `samples` times interleaved with its baseline; then platform_sync: the
    first (the rows are dropped before it), then `syncs` times in the steady state, and the
    SQL queries of one more."""
    from restores.models import Cluster
    from restores.platforms.kubernetes.state import LEADER_SELECTOR

    kube = platform.kube
    clusters_ms: list[float] = []
    lists_ms: list[float] = []
    calls: Counter = Counter()
    for _ in range(samples):
        seconds, calls, fleet = counted(server, platform.clusters)
        clusters_ms.append(seconds * 1000)
        t0 = time.perf_counter()
        kube.list_clusters(NS)
        kube.list_pods(NS, LEADER_SELECTOR)
        lists_ms.append((time.perf_counter() - t0) * 1000)
    n = len(fleet)
    Cluster.objects.all().delete()  # repos and backups go with them: a first sync
    with _timing(platform, "repos") as spent, sql_queries() as written:
        first_s, first_calls, _ = counted(server, lambda: sync(clusters=n, read=n))
    steady_s: list[float] = []
    steady_calls: Counter = Counter()
    for _ in range(syncs):
        seconds, steady_calls, _ = counted(server, lambda: sync(clusters=n, read=0))
        steady_s.append(seconds)
    queries = count_queries(n)
    ctx.log(f"  clusters() {median(clusters_ms):.0f} ms, {sum(calls.values())} calls; "
            f"first sync {first_s:.1f} s, {first_calls[EXEC]:,} execs; steady "
            f"{median(steady_s) * 1000:.0f} ms, {steady_calls[EXEC]} execs, {queries} queries")
    return Measured(clusters_ms, lists_ms, calls, first_s, first_calls, sum(spent),
                    written[0], steady_s, steady_calls, queries)


def count_queries(clusters: int) -> int:
    """SQL queries of one platform_sync in the steady state."""
    with sql_queries() as queries:
        sync(clusters=clusters, read=0)
    return queries[0]


@contextlib.contextmanager
def sql_queries() -> Iterator[list[int]]:
    """Count the SQL queries run meanwhile (Django's own query log keeps only the last
    9,000, fewer than a first sync of 1,000 clusters runs)."""
    from django.db import connection

    count = [0]

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        yield count


@contextlib.contextmanager
def _timing(obj: Any, method: str) -> Iterator[list[float]]:
    """Add up the seconds each call of obj.<method> takes (an instance attribute shadows the
    method for the duration)."""
    spent: list[float] = []
    original = getattr(obj, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    setattr(obj, method, timed)
    try:
        yield spent
    finally:
        delattr(obj, method)


def pool_effect(server: Any) -> tuple[float, float, int]:
    """Seconds of a sync that reads every cluster (fingerprints cleared) with each exec
    SLOW_EXEC_S slower: one cluster at a time, then DR_SYNC_CONCURRENCY at a time (and that)."""
    from django.conf import settings
    from django.test import override_settings

    from restores.models import Cluster

    answer = server.exec_handler

    def slow(*args: Any) -> Any:
        time.sleep(SLOW_EXEC_S)
        return answer(*args)

    n = Cluster.objects.filter(platform="kubernetes").count()
    workers = settings.DR_SYNC_CONCURRENCY
    took = []
    server.exec_handler = slow
    try:
        for concurrency in (1, workers):
            Cluster.objects.update(repos_fingerprint="")
            with override_settings(DR_SYNC_CONCURRENCY=concurrency):
                t0 = time.perf_counter()
                sync(clusters=n, read=n)
                took.append(time.perf_counter() - t0)
    finally:
        server.exec_handler = answer
    return took[0], took[1], workers


def change_lags(server: Any, emulator: Any, platform: Any, *, samples: int,
                size: int) -> list[Change]:
    """A backup finishes on one cluster: pgBackRest lists a new set and PGO writes
    status.pgbackrest.manualBackup (finished). Time from that status write until the watch
    delivers it, and until a platform_sync run on that event has stored the set."""
    from restores.models import Backup
    from restores.platforms.kubernetes import watch_clusters

    arrived: dict[tuple[str, str], float] = {}
    added = threading.Semaphore(0)
    changed = threading.Condition()

    def on_event(kind: str, obj: dict[str, Any]) -> None:
        manual = ((obj.get("status") or {}).get("pgbackrest") or {}).get("manualBackup") or {}
        if kind == "ADDED":
            added.release()
        elif kind == "MODIFIED" and manual.get("id"):
            with changed:
                arrived[(obj["metadata"]["name"], manual["id"])] = time.perf_counter()
                changed.notify_all()

    stop = threading.Event()
    thread = threading.Thread(target=watch_clusters, args=(platform.kube, [NS], on_event, stop),
                              name="bench-watch", daemon=True)
    thread.start()
    found: list[Change] = []
    try:
        for _ in range(size):  # the initial list, delivered as ADDED
            if not added.acquire(timeout=30):
                raise BenchError("the watch did not deliver the initial list")
        deadline = time.monotonic() + 10
        while server.calls[("watch", "postgresclusters")] < 1:  # the watch request is open
            if time.monotonic() > deadline:
                raise BenchError("watch_clusters never opened its watch")
            time.sleep(0.01)
        for k in range(samples):
            name, backup_id = f"pg{k % (size - 1):04d}", f"bench-{k}"
            emulator._take_backup(NS, name, "repo1", ["--type=incr"], {})  # the set exists
            before = Backup.objects.filter(repository__cluster__name=name).count()
            t0 = time.perf_counter()
            server.store.patch("postgresclusters", NS, name, {"status": {"pgbackrest": {
                "manualBackup": {"id": backup_id, "finished": True, "succeeded": 1,
                                 "completionTime": server.store.now()}}}})
            with changed:
                if not changed.wait_for(lambda n=name, b=backup_id: (n, b) in arrived,
                                        timeout=10):
                    raise BenchError(f"the watch did not deliver the change to {name}")
            _, calls, _ = counted(server, lambda: sync(clusters=size, read=1))
            done = time.perf_counter()
            if Backup.objects.filter(repository__cluster__name=name).count() != before + 1:
                raise BenchError(f"the sync did not store {name}'s new backup")
            found.append(Change(done - t0, arrived[(name, backup_id)] - t0, calls))
    finally:
        stop.set()
        thread.join(15)
    return found


def renewal_wave() -> list[int]:
    """Clusters read per sync after a sync read them all: before each sync the stored read
    times move DR_INVENTORY_INTERVAL back (as if the beat had run), until DR_REPO_MAX_AGE
    has passed. BenchError if some cluster was not read again by then."""
    import datetime as dt

    from django.conf import settings
    from django.db.models import F
    from django.utils import timezone

    from restores.models import Cluster

    rows = Cluster.objects.filter(platform="kubernetes")
    n = rows.count()
    start = timezone.now()
    rows.update(repos_synced_at=start)
    last, moved = time.monotonic(), dt.timedelta(0)
    read = []
    for _ in range(math.ceil(settings.DR_REPO_MAX_AGE / settings.DR_INVENTORY_INTERVAL)):
        # Less the time the last sync really took: one interval passes per step, no more.
        ran = time.monotonic() - last
        step = dt.timedelta(seconds=max(0.0, settings.DR_INVENTORY_INTERVAL - ran))
        rows.update(repos_synced_at=F("repos_synced_at") - step)
        last, moved = time.monotonic(), moved + step
        read.append(sync(clusters=n, read=None).repos_read)
    left = rows.filter(repos_synced_at__lte=start - moved).count()  # never read again
    if left:
        raise BenchError(f"{left} of {n} clusters not read again within DR_REPO_MAX_AGE")
    return read


# -- the table -----------------------------------------------------------------------------------


def describe(calls: Counter) -> str:
    """API calls as 'N verb resource' by count, largest first: `1 list postgresclusters, ...`."""
    parts = sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n:,} {verb} {resource}" for (verb, resource), n in parts) or "none"


def calls_row(title: str, small: Counter, large: Counter, sizes: tuple[int, int]) -> Row:
    a, b = sum(small.values()), sum(large.values())
    same = small == large
    return Row(name=title, metric="API calls", median=b, unit="calls", baseline=a,
               ratio=b / a if a else None, goal=f"same at {sizes[0]:,} and {sizes[1]:,} clusters",
               status=PASS if same else MISSED,
               note=f"at {sizes[1]:,}: {describe(large)}" + (
                   "" if same else f"; at {sizes[0]:,}: {describe(small)}"))


def count_row(title: str, metric: str, small: int, large: int, sizes: tuple[int, int],
              unit: str) -> Row:
    """A count that must not grow with the fleet: Median at the large size, Baseline at the
    small one."""
    return Row(name=title, metric=metric, median=large, unit=unit, baseline=small,
               ratio=large / small if small else None,
               goal=f"same at {sizes[0]:,} and {sizes[1]:,} clusters",
               status=PASS if small == large else MISSED)


def execs_row(measured: dict[int, Measured], changes: list[Change], wave: list[int]) -> Row:
    """Pod execs per sync by fleet size: the first sync, the steady state, one change, the
    heaviest renewal sync."""
    small, large = SIZES
    per = {size: (m.first_calls[EXEC], m.steady_calls[EXEC]) for size, m in measured.items()}
    changed = sorted({c.calls[EXEC] for c in changes})
    return Row(
        name="Pod execs per sync, steady state", metric="pod execs",
        median=per[large][1], unit="execs", baseline=per[small][1], ratio=None,
        goal=f"same at {small:,} and {large:,} clusters",
        status=PASS if per[small][1] == per[large][1] else MISSED,
        note=(f"first sync {per[small][0]:,} at {small:,} and {per[large][0]:,} at {large:,} "
              f"clusters (2 per cluster); steady state {per[small][1]} and {per[large][1]}; "
              f"one cluster's finished backup {'/'.join(map(str, changed))}; renewal at "
              f"DR_REPO_MAX_AGE at most {2 * max(wave):,} in one sync at {large:,}"))


def rows(measured: dict[int, Measured], changes: list[Change],
         pool: tuple[float, float, int], wave: list[int]) -> list[Row]:
    small, large = SIZES
    m, s = measured[large], measured[small]
    clusters_s = median(m.clusters_ms) / 1000
    steady = median(m.steady_s)
    totals = [c.total_s * 1000 for c in changes]
    watch = [c.watch_s * 1000 for c in changes]
    one_at_a_time, pooled, workers = pool
    return [
        timed_row(f"KubernetesPlatform.clusters(), {large:,} clusters", m.clusters_ms,
                  baseline_ms=median(m.lists_ms),
                  note="baseline = its two list calls (postgresclusters, leader pods), bare"),
        calls_row("KubernetesPlatform.clusters()", s.clusters_calls, m.clusters_calls,
                  (small, large)),
        Row(name=f"inventory.platform_sync(kubernetes), first sync, {large:,} clusters",
            metric="wall time", median=m.first_s, unit="s", baseline=clusters_s,
            ratio=m.first_s / clusters_s, n=1, status=INFO,
            note=(f"no rows yet: every cluster's repos read, {m.first_calls[EXEC]:,} pod "
                  f"execs, platform.repos() {m.repos_s:.1f} s in all on the pool's threads; "
                  f"the sync's own thread writes meanwhile, {m.first_queries / large:.0f} SQL "
                  f"queries per cluster, and sets the pace; {s.first_s:.1f} s at {small:,}; "
                  f"baseline = clusters()")),
        Row(name=f"inventory.platform_sync(kubernetes), steady state, {large:,} clusters",
            metric="wall time", median=steady,
            p95=p95(m.steady_s) if len(m.steady_s) > 2 else None, unit="s",
            baseline=clusters_s, ratio=steady / clusters_s, n=len(m.steady_s), status=INFO,
            note=(f"nothing changed, every answer younger than DR_REPO_MAX_AGE: "
                  f"{m.steady_calls[EXEC]} pod execs; {median(s.steady_s) * 1000:.0f} ms at "
                  f"{small:,}; baseline = clusters()")),
        calls_row("inventory.platform_sync(kubernetes), steady state", s.steady_calls,
                  m.steady_calls, (small, large)),
        count_row("inventory.platform_sync(kubernetes), steady state", "SQL queries",
                  s.queries, m.queries, (small, large), "queries"),
        execs_row(measured, changes, wave),
        Row(name=f"A backup finishing on one cluster reaches the console ({large:,} clusters)",
            metric="latency", median=median(totals), p95=p95(totals), unit="ms",
            n=len(totals), status=INFO,
            note=(f"PGO's status write → the watch's MODIFIED event (median "
                  f"{median(watch):.1f} ms) → one platform_sync reading that cluster alone "
                  f"({describe(changes[0].calls)}) → its new set stored. The beat runs the "
                  f"sync every DR_INVENTORY_INTERVAL: without a sync started on the event, "
                  f"add up to that")),
        Row(name=f"Renewal at DR_REPO_MAX_AGE, {large:,} clusters read together",
            metric="clusters read per sync", median=max(wave), unit="clusters",
            baseline=large, ratio=max(wave) / large, n=len(wave), status=INFO,
            note=(f"one sync per DR_INVENTORY_INTERVAL after a sync that read them all: "
                  f"{', '.join(map(str, wave))}; baseline = the fleet")),
        Row(name=f"The pool: every cluster read, each exec +{SLOW_EXEC_S * 1000:.0f} ms, "
                 f"{small:,} clusters",
            metric="wall time", median=pooled, unit="s", baseline=one_at_a_time,
            ratio=pooled / one_at_a_time, n=1, status=INFO,
            note=(f"{workers} at a time (DR_SYNC_CONCURRENCY) against one at a time (the "
                  f"baseline); a real API server's exec costs 100-300 ms")),
    ]
