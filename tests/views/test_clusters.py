"""None"""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.test import Client
from django.utils import timezone

from restores.models import Backup, Cluster, Repository
from restores.models.transitions import Status, operation_transition
from restores.selectors.clusters import BACKUPS_SHOWN
from tests.factories import BackupFactory, OperationFactory
from tests.kube.fixtures import NS, Console

pytestmark = pytest.mark.django_db
URL = "/clusters/local/local/hippo/"
STATUS = ('id="cluster-head" hx-swap-oob="true"', 'id="availability" hx-swap-oob="true"',
          'id="cluster-operations" hx-swap-oob="true"')
BACKUPS = 'id="repos" hx-swap-oob="true"'
BASE = "/clusters/local/local/hippo/"


def test_it_shows_backups_window_and_the_backup_form(client: Client, repo: Repository) -> None:
    BackupFactory(repository=repo, label="20261124-090000F_20261124-093000I", type="incr")
    r = client.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-label="20261124-090000F"' in html
    assert 'data-label="20261124-090000F_20261124-093000I"' in html
    assert 'class="btype btype-incr"' in html
    assert "28.6 MiB" in html  # database size of the factory backup (30,000,000 bytes)
    assert 'class="timeline"' in html and "tl-window" in html
    assert 'id="backup-form"' in html and '<option value="repo1" selected>repo1</option>' in html


def test_it_is_404_for_an_unknown_cluster(client: Client, repo: Repository) -> None:
    assert client.get("/clusters/local/local/nope/").status_code == 404
    assert client.get("/clusters/kubernetes/local/hippo/").status_code == 404


def poll_url(html: str) -> str:
    """The URL the page's poller asks next (with both regions' fingerprints)."""
    return html.split('id="cluster-poll" hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def swapped(html: str) -> set[str]:
    """Which regions a poll answer swaps in: "status" (all three of its parts), "backups"."""
    parts = {"status"} if all(p in html for p in STATUS) else set()
    assert parts or not any(p in html for p in STATUS), "the status region came in part"
    return parts | ({"backups"} if BACKUPS in html else set())


@pytest.fixture
def watched(client: Client, repo: Repository) -> str:
    """The poll URL of a freshly loaded page."""
    return poll_url(client.get(URL).content.decode())


def test_its_poll_answers_204_while_nothing_changed(client: Client, watched: str, hx) -> None:  # type: ignore[no-untyped-def]
    assert watched.startswith(URL + "?s=") and "&b=" in watched
    r = client.get(watched, **hx)
    assert r.status_code == 204 and r.content == b""


def test_an_operation_change_swaps_in_the_status_region_only(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    op = OperationFactory(cluster=repo.cluster)
    watched = poll_url(client.get(URL).content.decode())
    operation_transition(op, status=Status.RUNNING, step="backing_up", message="Started.")
    r = client.get(watched, **hx)
    html = r.content.decode()
    assert r.status_code == 200 and swapped(html) == {"status"}
    assert html.lstrip().startswith('<div id="cluster-poll"')
    assert '<span class="status status-running">running</span>' in html
    assert "data-label" not in html  # the backup tables are not rendered
    # The new poller carries the new status fingerprint and the same backups one.
    after = poll_url(html)
    assert after != watched and after.split("&b=")[1] == watched.split("&b=")[1]
    assert client.get(after, **hx).status_code == 204


def test_a_new_backup_swaps_in_the_backups_region_only(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    BackupFactory(repository=repo, label="20261124-100000F")
    r = client.get(watched, **hx)
    html = r.content.decode()
    assert r.status_code == 200 and swapped(html) == {"backups"}
    assert 'data-label="20261124-100000F"' in html and 'data-label="20261124-090000F"' in html
    assert 'id="operations"' not in html and "<h1>" not in html
    after = poll_url(html)
    assert after.split("&b=")[0] == watched.split("&b=")[0]
    assert client.get(after, **hx).status_code == 204


def test_an_expired_backup_leaves_the_list(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    Backup.objects.filter(label="20261124-090000F").delete()
    html = client.get(watched, **hx).content.decode()
    assert swapped(html) == {"backups"}
    assert "data-label" not in html and "No backups in this repo." in html


def test_a_moved_window_or_a_running_backup_swaps_in_the_backups_region(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    later = repo.latest_recovery + dt.timedelta(minutes=5)
    Repository.objects.filter(pk=repo.pk).update(latest_recovery=later)
    html = client.get(watched, **hx).content.decode()
    assert swapped(html) == {"backups"} and "2026-11-24 10:05:00 UTC" in html
    Repository.objects.filter(pk=repo.pk).update(backup_running=True)
    html = client.get(poll_url(html), **hx).content.decode()
    assert swapped(html) == {"backups"} and "backup running" in html


def test_a_role_change_swaps_in_the_header_and_the_actions(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    Cluster.objects.filter(pk=repo.cluster_id).update(role=Cluster.Role.STANDBY,
                                                      state_message="replaying WAL")
    html = client.get(watched, **hx).content.decode()
    assert swapped(html) == {"status"}
    assert '<span class="role role-standby">standby</span>' in html
    assert "replaying WAL" in html and 'id="promote-link"' in html


def test_a_sync_that_found_nothing_new_keeps_the_poll_quiet(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    # The inventory stamps synced_at on every pass; nothing the page shows changed.
    Cluster.objects.filter(pk=repo.cluster_id).update(synced_at=timezone.now())
    Repository.objects.filter(pk=repo.pk).update(synced_at=timezone.now())
    assert client.get(watched, **hx).status_code == 204


def test_both_regions_come_when_both_changed(
    client: Client, repo: Repository, watched: str, hx  # type: ignore[no-untyped-def]
) -> None:
    OperationFactory(cluster=repo.cluster, status="succeeded")
    BackupFactory(repository=repo, label="20261124-100000F")
    html = client.get(watched, **hx).content.decode()
    assert swapped(html) == {"status", "backups"}
    assert 'data-label="20261124-100000F"' in html and "succeeded" in html
    # A poll without fingerprints gets everything too.
    assert swapped(client.get(URL, **hx).content.decode()) == {"status", "backups"}


def test_a_full_page_request_with_a_stale_fingerprint_still_renders(
    client: Client, repo: Repository
) -> None:
    assert client.get(URL + "?s=whatever&b=whatever").status_code == 200


def test_it_lists_the_newest_backups_and_offers_the_rest(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:

    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for n in range(BACKUPS_SHOWN + 4):
        BackupFactory(repository=repo, label=f"20261101-{n:06d}F",
                      stopped_at=start + dt.timedelta(hours=n))
    html = client.get(URL).content.decode()
    assert html.count('<tr data-label="') == BACKUPS_SHOWN
    assert "5 older backups not listed" in html  # 34 made here + the fixture's one
    assert html.count('class="tl-backup') == BACKUPS_SHOWN + 5  # the timeline places all
    everything = client.get(URL + "?backups=all").content.decode()
    assert everything.count('<tr data-label="') == BACKUPS_SHOWN + 5
    # Its poll keeps listing them all.
    watched = poll_url(everything)
    assert watched.endswith("&backups=all")
    BackupFactory(repository=repo, label="20261201-000000F", stopped_at=start)
    html = client.get(watched, **hx).content.decode()
    assert swapped(html) == {"backups"} and html.count('<tr data-label="') == BACKUPS_SHOWN + 6


def test_a_failed_restore_shows_its_condition_unfolded(console: Console, kube_api, hippo_manifest,
                                                       admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest())
    console.emu.settle()
    console.emu.fail_restore.add("hippo")
    kube_api.patch_cluster(NS, "hippo", {
        "metadata": {"annotations": {
            "postgres-operator.crunchydata.com/pgbackrest-restore": "r1"}},
        "spec": {"backups": {"pgbackrest": {"restore": {"enabled": True, "repoName": "repo1"}}}},
    })
    for _ in range(12):
        console.emu.tick()
    console.sync()
    row = console.cluster("hippo")
    assert row.state == "failed"
    failed = [c for c in row.conditions if c["type"] == "PostgresDataInitialized"]
    assert failed and failed[0]["status"] == "False"
    assert failed[0]["reason"] == "PGBackRestRestoreFailed"
    page = html.unescape(admin_client.get(row.get_absolute_url()).content.decode())
    assert 'id="cluster-conditions" open' in page
    assert "PostgresDataInitialized=False" in page


@pytest.mark.parametrize("path", ["restore/", "standby/", "promote/", "shutdown/", "start/"])
def test_junk_is_never_a_500(client: Client, repo: Repository, hx, path: str) -> None:  # type: ignore[no-untyped-def]
    for data in ({}, {"kind": "x", "confirm": "\\x00" * 100}, {"name": "a" * 999, "repo": "r"},
                 {"kind": "time", "date": "bad", "clock": "bad", "zone": "Nowhere"}):
        assert client.post(BASE + path, data, **hx).status_code in (200, 422)
