"""The seed's story, end to end: a table is dropped by mistake; clone the cluster to a point
in time just before the drop, in the browser, and get the table back on a new cluster.

Real Chromium, real Celery worker on Redis, real PostgreSQL and pgBackRest (conftest.py).
The database side (the drop, the WAL switch, the checks of the clones' contents) runs SQL
on the servers and polls it; every wait in the browser is one of Playwright's auto-retrying
`expect`s or a wait for an htmx event: no sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from restores import rules
from restores.models import CloneDraft, Cluster, Operation, Repository
from restores.platforms.base import ClusterRef
from restores.platforms.local import LocalPlatform
from restores.templatetags.dr import pgtime, utc
from tests.e2e.helpers import OPERATION_URL, UUID, log_in

from .conftest import NAMESPACE, E2EFleet

pytestmark = pytest.mark.e2e

SOURCE = ClusterRef(NAMESPACE, "hippo")
DEMO_DB = "hippo"  # load_demo_data's database is named after the cluster
AFTER_DROP = "orders_after_drop"  # made after the drop; in the SQL below as written
# A whole clone (restore, WAL replay, promotion, own stanza, first full backup) takes about
# ten seconds on a quiet machine; leave room for a slow one.
CLONE_TIMEOUT_MS = 180_000
SQL_WAIT_SECONDS = 60.0
# A zone with a half-hour offset and no daylight saving time: the wizard has to convert.
ZONE = "Asia/Kolkata"

# htmx reports when it is ready and when each swap has settled (only then are the swapped
# elements wired up); the tests wait for these events instead of sleeping.
HTMX_PROBE = """
window.__e2e = {ready: false, settled: 0};
document.addEventListener("htmx:load", (e) => {
  if (e.target === document.body) window.__e2e.ready = true;
});
document.addEventListener("htmx:afterSettle", () => { window.__e2e.settled += 1; });
"""


# --- the database side -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Story:
    rows: int  # rows of `users` before the drop
    point: dt.datetime  # T: before the drop, to the millisecond, UTC
    segment: str  # the WAL segment switched (and archived) after the drop


def _clock(platform: LocalPlatform) -> dt.datetime:
    ((now,),) = platform.sql(SOURCE, "select clock_timestamp()")
    return now.astimezone(dt.UTC)


def wait_for_clock(platform: LocalPlatform, when: dt.datetime) -> dt.datetime:
    """Poll the server's clock until it is past `when`; return that clock."""
    deadline = time.monotonic() + SQL_WAIT_SECONDS
    while (now := _clock(platform)) <= when:
        assert time.monotonic() < deadline, f"the clock of hippo did not pass {when}"
        time.sleep(0.05)
    return now


def switch_wal_and_wait(platform: LocalPlatform, ref: ClusterRef) -> str:
    """pg_switch_wal(), then wait until the switched segment is archived into the repo."""
    ((segment,),) = platform.sql(ref, "select pg_walfile_name(pg_current_wal_lsn())")
    platform.sql(ref, "select pg_switch_wal()")
    deadline = time.monotonic() + SQL_WAIT_SECONDS
    while (platform.sql(ref, "select last_archived_wal from pg_stat_archiver")[0][0] or "") < (
        segment
    ):
        assert time.monotonic() < deadline, f"{segment} was not archived"
        time.sleep(0.1)
    return str(segment)


def tables(platform: LocalPlatform, ref: ClusterRef, database: str = DEMO_DB) -> set[str]:
    rows = platform.sql(
        ref, "select tablename from pg_tables where schemaname = 'public'", database=database
    )
    return {name for (name,) in rows}


@pytest.fixture(scope="module")
def story(e2e_fleet: E2EFleet) -> Story:
    """On hippo: note T, drop `users`, create another table, switch WAL and archive it."""
    platform = e2e_fleet.platform
    ((rows,),) = platform.sql(SOURCE, "select count(*) from users", database=DEMO_DB)
    assert rows > 0, "load_demo_data fills users"
    (repo,) = platform.repos(SOURCE)
    newest_stop = max(b.stopped_at for b in repo.backups)
    # pgBackRest keeps stop times in whole seconds and restores from the newest set that
    # stopped strictly before the target: keep T a second clear of the backup's stop.
    now = wait_for_clock(platform, newest_stop + dt.timedelta(seconds=1, milliseconds=100))
    # The wizard takes milliseconds: T is the clock, cut to them (still before the drop).
    point = now.replace(microsecond=now.microsecond // 1000 * 1000)
    platform.sql(SOURCE, "drop table users", database=DEMO_DB)
    platform.sql(SOURCE, "create table orders_after_drop (id int primary key)", database=DEMO_DB)
    platform.sql(SOURCE, "insert into orders_after_drop values (1), (2)", database=DEMO_DB)
    # The window's latest time is the archived segment's time in whole seconds: switch in a
    # later second than T, so the window surely reaches T.
    wait_for_clock(platform, point.replace(microsecond=0) + dt.timedelta(seconds=1))
    segment = switch_wal_and_wait(platform, SOURCE)
    assert "users" not in tables(platform, SOURCE)
    return Story(rows=int(rows), point=point, segment=segment)


# --- the browser side ----------------------------------------------------------------------------



def htmx_ready(page: Page) -> None:
    page.wait_for_function("() => window.__e2e && window.__e2e.ready")


def settled(page: Page, action: Callable[[], object]) -> None:
    """Do something that makes htmx swap part of the page; return once the swap settled."""
    before = page.evaluate("() => window.__e2e.settled")
    action()
    page.wait_for_function("n => window.__e2e.settled > n", arg=before)


def step_url(step: str) -> re.Pattern[str]:
    return re.compile(rf"/clone/{UUID}/{step}/$")


def at_step(page: Page, step: str) -> None:
    expect(page).to_have_url(step_url(step))
    htmx_ready(page)


def set_field(page: Page, label: str, value: str) -> None:
    """Fill a date/time input or pick an option, waiting for the preview it triggers. A
    field that already holds the value is left alone (no change event, no preview)."""
    field = page.get_by_label(label, exact=True)
    if field.input_value() == value:
        return
    if field.evaluate("el => el.tagName") == "SELECT":
        settled(page, lambda: field.select_option(value))
    else:
        settled(page, lambda: field.fill(value))
    expect(field).to_have_value(value)


def enter_time(page: Page, when: dt.datetime, zone: str) -> None:
    """Type `when` as the wall-clock time in `zone` (milliseconds included), then check the
    wizard resolves it back to the same instant in UTC."""
    local = when.astimezone(zoneinfo.ZoneInfo(zone))
    set_field(page, "Time zone", zone)
    set_field(page, "Date", local.date().isoformat())
    set_field(page, "Time", local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}")
    resolved = page.locator("#resolved-utc")
    expect(resolved).to_contain_text(utc(when))
    expect(resolved).to_contain_text(pgtime(when))



def start_wizard(page: Page, live_server, hippo_row: Cluster) -> None:  # type: ignore[no-untyped-def]
    """From the fleet page to hippo's page, then the wizard's source step: hippo / repo1."""
    page.goto("/")
    page.locator('#fleet tr[data-cluster="hippo"]').get_by_role("link", name="hippo").click()
    expect(page).to_have_url(live_server.url + hippo_row.get_absolute_url())
    page.get_by_role("button", name="Clone / point-in-time restore…").click()
    at_step(page, "source")
    expect(page.get_by_label("Source cluster")).to_have_value(str(hippo_row.pk))
    expect(page.get_by_label("Repo to restore from")).to_have_value("repo1")
    page.get_by_role("button", name="Next: the point to restore to").click()
    at_step(page, "point")


def name_the_target(page: Page, name: str) -> None:
    """The target step: the new cluster's name. The databases of the base backup are read
    in the background (for --db-include); wait for them so no refresh races the typing."""
    expect(page.get_by_label("reporting", exact=True)).to_be_visible()
    expect(page.get_by_label("Namespace")).to_have_value(NAMESPACE)
    page.get_by_label("New cluster name").fill(name)
    page.get_by_role("button", name="Next: review").click()
    at_step(page, "review")


def start_and_wait(page: Page) -> Operation:
    page.get_by_role("button", name="Start the restore").click()
    expect(page).to_have_url(OPERATION_URL)
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=CLONE_TIMEOUT_MS)
    op = Operation.objects.select_related("cluster").get(kind=Operation.Kind.CLONE,
                                                         status=Operation.Status.SUCCEEDED)
    assert page.url.endswith(op.get_absolute_url())
    return op


def fleet_row_is_primary(page: Page, name: str) -> None:
    page.goto("/")
    row = page.locator(f'#fleet tr[data-cluster="{name}"]')
    expect(row).to_be_visible()
    expect(row.locator("span.role")).to_have_text("primary")


# --- the tests -----------------------------------------------------------------------------------


def test_pitr_to_just_before_the_drop_brings_users_back_in_a_new_cluster(
    story: Story, context, live_server, celery_worker, hippo_row: Cluster, user,  # type: ignore[no-untyped-def]
    e2e_fleet: E2EFleet,
) -> None:
    platform = e2e_fleet.platform
    # The `hippo` fixture synced the inventory after the story: the window ends after the
    # switched segment. Pick a time after it that has passed already (the server's clock).
    repo = Repository.objects.get(cluster=hippo_row, name="repo1")
    assert repo.latest_wal >= story.segment
    latest = repo.latest_recovery
    assert latest is not None and latest >= story.point
    now = wait_for_clock(platform, latest + dt.timedelta(seconds=2))
    too_late = min(latest + dt.timedelta(seconds=30), now - dt.timedelta(seconds=1))
    too_late = too_late.replace(microsecond=too_late.microsecond // 1000 * 1000)

    context.add_init_script(HTMX_PROBE)
    page = context.new_page()
    log_in(page)
    start_wizard(page, live_server, hippo_row)
    expect(page.locator("#window-latest")).to_have_text(utc(latest))

    # A point in time after the last archived WAL is refused, next to the time, saying how
    # far the window goes.
    settled(page, lambda: page.get_by_label("A point in time").check())
    enter_time(page, too_late, "UTC")
    settled(page, lambda: page.get_by_role("button", name="Next: the new cluster").click())
    refused = rules.TIME_AFTER_WINDOW.format(
        when=utc(too_late), repo="repo1", latest=utc(latest)
    )
    error = page.locator("#error-clock")
    expect(error).to_have_text(refused)
    expect(error).to_have_attribute("role", "alert")
    expect(page.get_by_label("Time", exact=True)).to_be_visible()
    expect(page).to_have_url(step_url("point"))
    assert CloneDraft.objects.get().reached == CloneDraft.Step.POINT

    # T, typed as a wall-clock time in another zone, milliseconds included.
    enter_time(page, story.point, ZONE)
    page.get_by_role("button", name="Next: the new cluster").click()
    at_step(page, "target")
    name_the_target(page, "elephant")

    # The review shows what will run: the local pgBackRest command and PGO's manifest.
    target = f'--target="{pgtime(story.point)}"'
    command = page.locator("#plan-command")
    expect(command).to_contain_text("pgbackrest")
    expect(command).to_contain_text("--type=time")
    expect(command).to_contain_text(f"--target={pgtime(story.point)}")
    expect(command).to_contain_text("restore")
    manifest = page.locator("#manifest")
    expect(manifest).to_contain_text("kind: PostgresCluster")
    expect(manifest).to_contain_text("name: elephant")
    expect(manifest).to_contain_text("--type=time")
    expect(manifest).to_contain_text(target)

    op = start_and_wait(page)
    assert op.cluster.name == "elephant"
    assert op.requested_by == user
    assert dt.datetime.fromisoformat(op.params["point"]["time"]) == story.point
    assert op.result["first_backup"]

    # The table is back, whole, on the new cluster; what came after T is not there.
    elephant = ClusterRef(NAMESPACE, "elephant")
    assert platform.sql(elephant, "select count(*) from users", database=DEMO_DB) == [
        (story.rows,)
    ]
    assert AFTER_DROP not in tables(platform, elephant)
    assert platform.sql(elephant, "select pg_is_in_recovery()") == [(False,)]
    # The source is untouched: still without users, still with the later table.
    assert "users" not in tables(platform, SOURCE)
    assert AFTER_DROP in tables(platform, SOURCE)

    fleet_row_is_primary(page, "elephant")
    fleet_row_is_primary(page, "hippo")


def test_clone_at_latest_has_everything_archived(
    story: Story, context, live_server, celery_worker, hippo_row: Cluster, user,  # type: ignore[no-untyped-def]
    e2e_fleet: E2EFleet,
) -> None:
    platform = e2e_fleet.platform
    context.add_init_script(HTMX_PROBE)
    page = context.new_page()
    log_in(page)
    start_wizard(page, live_server, hippo_row)
    expect(page.get_by_label("Latest: replay all archived WAL")).to_be_checked()
    page.get_by_role("button", name="Next: the new cluster").click()
    at_step(page, "target")
    name_the_target(page, "rhino")

    command = page.locator("#plan-command")
    expect(command).to_contain_text("--type=default")
    expect(command).not_to_contain_text("--target=")
    expect(page.locator("#manifest")).to_contain_text("name: rhino")

    op = start_and_wait(page)
    assert op.cluster.name == "rhino"
    assert op.params["point"]["kind"] == "latest"

    # Everything archived is there: the drop and the table made after it.
    rhino = ClusterRef(NAMESPACE, "rhino")
    assert "users" not in tables(platform, rhino)
    rows = platform.sql(rhino, "select id from orders_after_drop order by id", database=DEMO_DB)
    assert rows == [(1,), (2,)]
    fleet_row_is_primary(page, "rhino")
