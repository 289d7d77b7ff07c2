"""What the pages benchmark requests, and how it counts and times them.

Every request goes through Django's test Client in this process: the full middleware stack,
URL resolution, the view, its queries and the template, but no network and no WSGI server.
That is the server time the console adds; the baseline view (bench.urls) measured in the same
loop is the floor every page stands on.

Needs Django set up; `bench.urls` as ROOT_URLCONF for the baseline.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.framework import BenchError
from bench.urls import BASELINE_PATH
from dr_console import heap
from restores.models import Grant
from restores.selectors.clusters import cluster_fingerprints

PAGE, POLL, BASELINE = "page", "poll", "baseline"
GOAL_MS = {PAGE: 150.0, POLL: 20.0}
HTMX = {"HX-Request": "true"}


@dataclasses.dataclass(frozen=True)
class Target:
    key: str
    title: str
    path: str
    kind: str  # PAGE, POLL or BASELINE: which goal applies
    status: int = 200  # what the request must answer
    htmx: bool = False
    note: str = ""

    def get(self, client: Client) -> HttpResponse:
        response = client.get(self.path, headers=HTMX if self.htmx else None)
        if response.status_code != self.status:
            raise BenchError(f"{self.title}: GET {self.path} answered {response.status_code}, "
                             f"expected {self.status}")
        return response  # type: ignore[return-value]

    @property
    def goal_ms(self) -> float | None:
        return GOAL_MS.get(self.kind)


def busiest_cluster():  # type: ignore[no-untyped-def]
    """The listed cluster with the most backups: the heaviest cluster page."""
    from restores.models import Cluster

    return (Cluster.objects.filter(present=True)
            .annotate(n_backups=Count("repositories__backups", distinct=True),
                      n_repos=Count("repositories", distinct=True))
            .order_by("-n_backups", "pk").first())


def busiest_active_operation():  # type: ignore[no-untyped-def]
    """The active operation with the most events: the heaviest progress poll."""
    from restores.models import Operation

    return (Operation.objects.filter(status__in=Operation.ACTIVE, cluster__present=True)
            .select_related("cluster").annotate(n_events=Count("events"))
            .order_by("-n_events", "created_at").first())


def targets() -> list[Target]:
    """The requests the benchmark times and counts, chosen from what the database holds."""
    from django.urls import reverse

    from restores.models import Operation

    cluster = busiest_cluster()
    op = busiest_active_operation()
    if cluster is None or op is None:
        raise BenchError("the fleet has no listed cluster or no active operation to measure")
    fleet = reverse("restores:fleet")
    cluster_url = cluster.get_absolute_url()
    op_url = op.get_absolute_url()
    now = cluster_fingerprints(cluster)
    about_cluster = (f"{cluster.namespace}/{cluster.name}: {cluster.n_backups:,} backups "
                     f"in {cluster.n_repos} repo(s)")
    about_op = f"{op.get_kind_display()} of {op.cluster.name}, {op.status}, {op.n_events} events"
    drills = Operation.objects.filter(kind=Operation.Kind.DRILL).count()

    def cluster_poll(status: str, backups: str) -> str:
        return f"{cluster_url}?s={status}&b={backups}"

    return [
        Target("baseline", "Baseline: trivial view", BASELINE_PATH, BASELINE,
               note="HttpResponse('ok') behind the same middleware (session + user: 2 queries)"),
        Target("fleet", "Fleet page", fleet, PAGE),
        Target("fleet_partial", "Fleet table refresh (htmx)", fleet, PAGE, htmx=True,
               note="the whole table, every 10 s while the page is open"),
        Target("cluster", "Cluster page", cluster_url, PAGE, note=about_cluster),
        Target("cluster_poll", "Cluster page poll, unchanged (204)",
               cluster_poll(now.status, now.backups), POLL, status=204, htmx=True,
               note=about_cluster),
        Target("cluster_poll_status", "Cluster page poll, state or operations changed (200)",
               cluster_poll("stale", now.backups), POLL, htmx=True,
               note=f"{about_cluster}; header, availability and operations, out of band"),
        Target("cluster_poll_backups", "Cluster page poll, backups changed (200)",
               cluster_poll(now.status, "stale"), POLL, htmx=True,
               note=f"{about_cluster}; the repos with their windows and backup tables"),
        Target("cluster_poll_changed", "Cluster page poll, everything changed (200)",
               cluster_poll("stale", "stale"), POLL, htmx=True,
               note=f"{about_cluster}; both regions, as every poll answered before the split"),
        Target("operation", "Operation page", op_url, PAGE, note=about_op),
        Target("operation_poll", "Operation progress poll, unchanged (204)",
               f"{op_url}?v={op.version}", POLL, status=204, htmx=True, note=about_op),
        Target("operation_poll_changed", "Operation progress poll, changed (200)",
               f"{op_url}?v={op.version - 1}", POLL, htmx=True, note=about_op),
        Target("drills", "Drill report", reverse("restores:drills"), PAGE,
               note=f"{drills:,} drills, 50 per page, and each drilled cluster's last pass"),
    ]


def bench_user():  # type: ignore[no-untyped-def]
    """The bench's user, an admin of every cluster (the pages it measures show everything to
    it, the services it calls let it act), whether or not a seed made the user first."""
    user, created = get_user_model().objects.get_or_create(username="bench")
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Grant.objects.get_or_create(user=user, role=Grant.Role.ADMIN, platform="", namespace="")
    return user


def logged_in_client() -> Client:
    user = bench_user()
    client = Client()
    client.force_login(user)
    return client


def count_queries(client: Client, targets: Sequence[Target]) -> dict[str, int]:
    """SQL queries of one request to each target (after one request to warm caches)."""
    counts = {}
    for target in targets:
        target.get(client)
        with CaptureQueriesContext(connection) as queries:
            target.get(client)
        counts[target.key] = len(queries)
    return counts


def time_requests(client: Client, targets: Sequence[Target], *, samples: int, warmup: int = 3,
                  seed: int = 0, progress: Callable[[int], None] | None = None,
                  ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Server time of each request in milliseconds, `samples` times each, and response sizes.

    Targets are interleaved (in a shuffled order each round), so a burst of noise on a shared
    machine lands on pages and baseline alike instead of on whichever page ran during it.
    After the warm-up the heap is settled as a web worker's is once loaded (heap.settle).
    """
    order = list(targets)
    sizes = {}
    for _ in range(warmup):
        for target in order:
            sizes[target.key] = len(target.get(client).content)
    heap.settle()  # as the web worker does once loaded (dr_console/wsgi.py)
    times: dict[str, list[float]] = {t.key: [] for t in targets}
    rng = random.Random(seed)
    clock = time.perf_counter_ns
    for i in range(samples):
        rng.shuffle(order)
        for target in order:
            path, headers = target.path, HTMX if target.htmx else None
            t0 = clock()
            response = client.get(path, headers=headers)
            elapsed = clock() - t0
            if response.status_code != target.status:
                raise BenchError(f"{target.title}: GET {path} answered "
                                 f"{response.status_code}, expected {target.status}")
            times[target.key].append(elapsed / 1e6)
        if progress:
            progress(i + 1)
    return times, sizes
