from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Repository
from tests.factories import BackupFactory

pytestmark = pytest.mark.django_db

URL = "/clusters/local/local/hippo/"


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


def test_its_poll_answers_204_until_something_changes(
    client: Client, repo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    first = client.get(URL, **hx)
    assert first.status_code == 200
    html = first.content.decode()
    assert html.lstrip().startswith('<div id="live"')
    fingerprint = html.split("?v=", 1)[1].split('"', 1)[0]
    assert client.get(URL + f"?v={fingerprint}", **hx).status_code == 204
    BackupFactory(repository=repo, label="20261124-100000F")
    changed = client.get(URL + f"?v={fingerprint}", **hx)
    assert changed.status_code == 200
    assert 'data-label="20261124-100000F"' in changed.content.decode()


def test_a_full_page_request_with_a_stale_fingerprint_still_renders(
    client: Client, repo: Repository
) -> None:
    assert client.get(URL + "?v=whatever").status_code == 200


def test_it_lists_the_newest_backups_and_offers_the_rest(client: Client, repo: Repository) -> None:
    import datetime as dt

    from restores.selectors import BACKUPS_SHOWN

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
