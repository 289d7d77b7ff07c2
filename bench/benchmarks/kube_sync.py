"""The Kubernetes fleet at 1,000 PostgresClusters: the inventory sync, the raw list, the watch.

The test API server (tests/kube, a real HTTP server the real `kubernetes` client talks to)
holds copies of a PostgresCluster the PGO emulator brought up and backed up (its leader pod
included, and the emulator's `pgbackrest info` / `repo-ls` answers through pod exec), seeded
through `server.store`. At 100 clusters, then at 1,000:

- `KubernetesPlatform.clusters()`, timed against the two bare list calls it makes (the baseline);
- `restores.inventory.platform_sync(platform_name="kubernetes")` against a fresh schema of the
  bench database (the platform registry overridden with a KubernetesPlatform on the server's
  ApiClient), steady state (every row exists), and `platform.repos()` of every cluster alone;
- the API calls each makes, by verb and resource (`server.calls`): the goal is the same number
  at 100 and at 1,000 clusters.

Then the watch: `watch_clusters` following the namespace, and the time from a store write to
one cluster until its MODIFIED event reaches the callback.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
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


@dataclasses.dataclass
class Measured:
    clusters_ms: list[float]
    lists_ms: list[float]  # the baseline: the two list calls clusters() makes, bare
    clusters_calls: Counter
    sync_s: list[float]
    sync_calls: Counter
    repos_s: float  # of the sync's time, spent in platform.repos() (the API, no database)
    queries: int = 0  # SQL queries of one steady-state sync (counted at the small size only)


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
            measured[size] = measure(ctx, server, platform, samples=samples, syncs=syncs,
                                     first_counts=ctx.quick)
            if size == SIZES[0]:  # one more sync, untimed: its SQL queries
                measured[size].queries = count_queries()
        lags = watch_lags(server, platform, samples=samples, size=SIZES[-1])
    return rows(measured, lags, first=ctx.quick)


@contextlib.contextmanager
def kube_fleet() -> Iterator[tuple[Any, Any, Any]]:
    """The test API server with one PostgresCluster the PGO emulator created and backed up,
    and a KubernetesPlatform on it (namespace db)."""
    from restores.platforms.kubernetes import KubernetesPlatform
    from restores.platforms.kubernetes.api import USER_AGENT
    from tests.kube.apiserver import KubeServer
    from tests.kube.conftest import HIPPO
    from tests.kube.emulator import PgoEmulator

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
        emulator.backups[(NS, name)] = emulator.backups[(NS, "hippo")]


def counted(server: Any, work: Callable[[], Any]) -> tuple[float, Counter, Any]:
    """Seconds, API calls by (verb, resource), and the result of work()."""
    server.reset_calls()
    t0 = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - t0
    return seconds, Counter(server.calls), result


def measure(ctx: Context, server: Any, platform: Any, *, samples: int, syncs: int,
            first_counts: bool) -> Measured:
    """clusters() `samples` times interleaved with its baseline; then platform_sync: once to
    create the rows (timed only when `first_counts`, as --quick does), then `syncs` times in
    the steady state. Time spent in platform.repos() during the syncs is added up apart."""
    from restores import inventory
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
    sync_s: list[float] = []
    repos_s: list[float] = []
    sync_calls: Counter = Counter()
    with _timing(platform, "repos") as spent:
        for i in range(syncs + (0 if first_counts else 1)):
            spent.clear()
            seconds, sync_calls, result = counted(
                server, lambda: inventory.platform_sync(platform_name="kubernetes"))
            if result.errors or result.clusters != len(fleet):
                raise BenchError(f"platform_sync reported {result.clusters} clusters and "
                                 f"errors {result.errors[:3]}")
            if first_counts or i > 0:
                sync_s.append(seconds)
                repos_s.append(sum(spent))
    ctx.log(f"  clusters() {median(clusters_ms):.0f} ms, {sum(calls.values())} calls; "
            f"platform_sync {median(sync_s):.1f} s, {sum(sync_calls.values())} calls")
    return Measured(clusters_ms, lists_ms, calls, sync_s, sync_calls, median(repos_s))


def count_queries() -> int:
    """SQL queries of one platform_sync (rows already there: the steady state)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from restores import inventory

    with CaptureQueriesContext(connection) as queries:
        inventory.platform_sync(platform_name="kubernetes")
    return len(queries)


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


def watch_lags(server: Any, platform: Any, *, samples: int, size: int) -> list[float]:
    """Seconds from a store write to one cluster until watch_clusters delivers it."""
    from restores.platforms.kubernetes import watch_clusters

    arrived: dict[tuple[str, str], float] = {}
    added = threading.Semaphore(0)
    changed = threading.Condition()

    def on_event(kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        mark = (meta.get("labels") or {}).get("bench-change")
        if kind == "ADDED":
            added.release()
        elif kind == "MODIFIED" and mark:
            with changed:
                arrived[(meta["name"], mark)] = time.perf_counter()
                changed.notify_all()

    stop = threading.Event()
    thread = threading.Thread(target=watch_clusters, args=(platform.kube, [NS], on_event, stop),
                              name="bench-watch", daemon=True)
    thread.start()
    lags: list[float] = []
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
            name, mark = f"pg{k % (size - 1):04d}", str(k)
            t0 = time.perf_counter()
            server.store.patch("postgresclusters", NS, name,
                               {"metadata": {"labels": {"bench-change": mark}}})
            with changed:
                if not changed.wait_for(lambda n=name, m=mark: (n, m) in arrived, timeout=10):
                    raise BenchError(f"the watch did not deliver the change to {name}")
            lags.append(arrived[(name, mark)] - t0)
    finally:
        stop.set()
        thread.join(15)
    return lags


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


def rows(measured: dict[int, Measured], lags: list[float], *, first: bool) -> list[Row]:
    small, large = SIZES
    m, s = measured[large], measured[small]
    sync = median(m.sync_s)
    # What one more cluster costs: the difference between the sizes, per cluster added.
    per_cluster = {k: (v - s.sync_calls.get(k, 0)) / (large - small)
                   for k, v in m.sync_calls.items() if v > s.sync_calls.get(k, 0)}
    out = [
        timed_row(f"KubernetesPlatform.clusters(), {large:,} clusters", m.clusters_ms,
                  baseline_ms=median(m.lists_ms),
                  note="baseline = its two list calls (postgresclusters, leader pods), bare"),
        calls_row("KubernetesPlatform.clusters()", s.clusters_calls, m.clusters_calls,
                  (small, large)),
        Row(name=f"inventory.platform_sync(kubernetes), {large:,} clusters",
            metric="wall time", median=sync, p95=p95(m.sync_s) if len(m.sync_s) > 2 else None,
            unit="s", baseline=median(m.clusters_ms) / 1000,
            ratio=sync / (median(m.clusters_ms) / 1000), n=len(m.sync_s), status=INFO,
            note=(f"of which platform.repos() per cluster (pod exec) {m.repos_s:.1f} s "
                  f"({m.repos_s / sync:.0%}), the rest mostly the database "
                  f"({s.queries / small:.0f} SQL queries per cluster, counted at {small:,}); "
                  f"{median(s.sync_s):.1f} s at {small:,}; baseline = clusters()"
                  + ("; rows created in this sync" if first else ""))),
        calls_row("inventory.platform_sync(kubernetes)", s.sync_calls, m.sync_calls,
                  (small, large)),
    ]
    if per_cluster:
        out[-1].note += "; per cluster: " + ", ".join(
            f"{n:g} {verb} {resource}" for (verb, resource), n in sorted(per_cluster.items()))
    out.append(Row(
        name=f"Watch: one changed cluster reaches watch_clusters ({large:,} watched)",
        metric="latency", median=median(lags) * 1000, p95=p95(lags) * 1000, unit="ms",
        n=len(lags), status=INFO,
        note="store write → MODIFIED delivered to watch_clusters' callback: the transport "
             "only, not what the console does with the event"))
    return out
