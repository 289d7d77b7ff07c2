"""Pages at fleet scale: server time and SQL queries of the console's pages and polls.

Seeds (or reuses) two fleets in the bench database, a large one for timings and a small one
for the query-count comparison, then, against the large one:

- times each page and poll with the test Client, interleaved with a trivial baseline view,
  N times (quick 30, full 200): median, p95, and the ratio of the median to the baseline's;
- counts each request's SQL queries at both scales: a count that differs grows with the fleet.

Goals (issue #5): p95 under 150 ms for a page, under 20 ms for a poll; the same query count at
both scales.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.framework import MISSED, PASS, Context, Row, median, timed_row
from bench.registry import register

if TYPE_CHECKING:  # bench.fleet needs Django set up: imported inside the benchmark
    from bench.fleet import Scale

SCALES = {
    # mode: (timed scale, the smaller scale its query counts are compared with)
    "quick": ((100, 10_000, 2_000), (10, 1_000, 200)),
    "full": ((1_000, 100_000, 20_000), (100, 10_000, 2_000)),
}


@register("pages", title="Pages at fleet scale", order=30)
def pages(ctx: Context) -> list[Row]:
    from bench import django_env

    url = django_env.setup()
    ctx.log(f"bench database {django_env.redact(url)}")

    from django.test.utils import override_settings

    from bench import fleet
    from bench import pages as lib

    large, small = (fleet.Scale(*s) for s in SCALES[ctx.mode])
    samples = ctx.samples(quick=30, full=200)
    rows: list[Row] = []
    counts: dict[fleet.Scale, dict[str, int]] = {}
    with override_settings(ROOT_URLCONF="bench.urls"):
        # Small scale first, so the connection ends on the large one for the timings.
        for scale in (small, large):
            ready = fleet.ensure(scale, reseed=ctx.reseed, log=ctx.log)
            client = lib.logged_in_client()
            targets = lib.targets()
            counts[scale] = lib.count_queries(client, targets)
        ctx.info["postgresql"] = django_env.server_version()
        ctx.info["fleet"] = ready.seeded.describe()

        ctx.log(f"timing {len(targets)} requests x {samples} at {large.describe()}")
        step = max(samples // 5, 1)
        times, sizes = lib.time_requests(
            client, targets, samples=samples,
            progress=lambda i: ctx.log(f"  {i}/{samples}") if i % step == 0 else None,
        )

    how = f"seeded {ready.seeded_at}, reused" if ready.reused else "seeded in this run"
    rows.append(Row(
        name="Fleet database", metric="seed time", median=round(ready.seconds, 1), unit="s",
        note=f"{ready.seeded.describe()}; {how} (schema {large.schema})",
    ))
    base = median(times["baseline"])
    for target in targets:
        size = f"{sizes[target.key] / 1024:,.0f} KiB" if sizes[target.key] >= 1024 else (
            f"{sizes[target.key]} B")
        note = "; ".join(x for x in (target.note, size) if x)
        if target.kind == lib.BASELINE:
            rows.append(timed_row(target.title, times[target.key], baseline_ms=None, note=note))
            rows[-1].baseline, rows[-1].ratio = base, 1.0
        else:
            rows.append(timed_row(target.title, times[target.key], baseline_ms=base,
                                  limit_ms=target.goal_ms, note=note))
        rows.append(query_row(target.title, counts[small][target.key],
                              counts[large][target.key], small, large))
    return rows


def query_row(title: str, small_count: int, large_count: int, small: Scale, large: Scale) -> Row:
    same = small_count == large_count
    return Row(
        name=title, metric="SQL queries", median=large_count, unit="queries",
        baseline=small_count, ratio=large_count / small_count if small_count else None,
        goal=f"same at {small.clusters:,} and {large.clusters:,} clusters",
        status=PASS if same else MISSED,
        note=(f"{small_count} at {small.describe()}; {large_count} at {large.describe()}"
              if not same else ""),
    )

