"""The clone wizard's pages: each step, its refusals next to their fields, the review, a cloud
source; and no secret ever rendered."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from restores import rules
from restores.forms.clones import GLOBAL_LINE_CREDENTIAL
from restores.models import AuditEntry, Backup, CloneDraft, Cluster, Operation, Repository
from restores.platforms import manifests
from restores.platforms.base import PermanentError
from restores.platforms.secrets import is_credential, scrub
from restores.services import clones
from tests.factories import BackupFactory, ClusterFactory, RepositoryFactory
from tests.fakes import FakePlatform
from tests.kube.apiserver import crd
from tests.kube.fixtures import HIPPO_PATH, NS, ORIGIN, Console
from tests.worker import messages

pytestmark = pytest.mark.django_db
POINT = {"kind": "time", "date": "2026-11-24", "clock": "09:30:00", "zone": "UTC"}
TARGET = {"name": "elephant", "storage": "1Gi"}
JUNK = [
    {}, {"source": "x"}, {"source": "999999", "repo": "repo1"}, {"kind": "time"},
    {"kind": "time", "date": "2026-13-45", "clock": "25:61", "zone": "UTC"},
    {"kind": "lsn", "lsn": "0/" + "F" * 100}, {"kind": "xid", "xid": "9" * 40},
    {"name": "a" * 5000, "storage": "\x00"}, {"db_include": ["'; drop table users; --"]},
    {"kind": ["time", "lsn"], "date": ["x", "y"]}, {"_preview": "1", "source": "-1"},
    {"version": "abc"},
]
Status = Operation.Status
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CREDENTIAL_OPTIONS = [
    "repo1-s3-key", "repo1-s3-key-secret", "repo1-s3-token", "repo1-cipher-pass",
    "repo1-gcs-key", "repo1-azure-key", "repo1-s3-sse-customer-key", "repo1-host-password",
    "repo1-azure-credentials",
]
HARMLESS = ["repo1-s3-uri-style", "repo1-s3-key-type", "repo1-azure-key-type",
            "repo1-s3-kms-key-id", "repo1-retention-full", "repo1-storage-verify-tls"]


@pytest.fixture
def window(repo: Repository) -> Repository:
    """hippo's repo1: a full at 09:00, window 09:00 → 10:00, backups' databases known."""
    Backup.objects.filter(repository=repo).update(databases=["hippo", "reporting"])
    return repo


def _draft(client: Client, source: Cluster | None = None) -> CloneDraft:
    r = client.post("/clone/", {"source": source.pk if source else ""})
    assert r.status_code == 302
    return CloneDraft.objects.get(pk=r["Location"].split("/")[2])


def _url(draft: CloneDraft, step: str) -> str:
    return f"/clone/{draft.id}/{step}/"


def _through_target(client: Client, window: Repository, hx: dict[str, str],
                    target: dict[str, str] | None = None) -> CloneDraft:
    draft = _draft(client, window.cluster)
    assert client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"},
                       **hx).status_code == 200
    assert client.post(_url(draft, "point"), POINT, **hx).status_code == 200
    r = client.post(_url(draft, "target"), target or TARGET, **hx)
    assert r.status_code == 200, r.content.decode()
    draft.refresh_from_db()
    return draft


def test_it_keeps_the_draft_and_walks_every_step(
    client: Client, window: Repository, hx, fake: FakePlatform  # type: ignore[no-untyped-def]
) -> None:
    draft = _draft(client, window.cluster)
    assert (draft.source, draft.repo_name, draft.reached) == (window.cluster, "repo1", "source")
    page = client.get(_url(draft, "source")).content.decode()
    assert '<option value="repo1" selected>repo1</option>' in page
    r = client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    assert r["HX-Redirect"] == _url(draft, "point")
    r = client.post(_url(draft, "point"), POINT, **hx)
    assert r["HX-Redirect"] == _url(draft, "target")
    draft.refresh_from_db()
    assert draft.point["time"] == "2026-11-24T09:30:00+00:00"
    # A reload (or a second operator) sees the stored answers.
    page = client.get(_url(draft, "point")).content.decode()
    assert 'value="09:30:00"' in page and "2026-11-24 09:30:00 UTC" in page
    r = client.post(_url(draft, "target"), {**TARGET, "db_include": ["reporting"]}, **hx)
    assert r["HX-Redirect"] == _url(draft, "review")
    review = client.get(_url(draft, "review")).content.decode()
    assert "pgbackrest --stanza=db --repo=1 --pg1-path=/fleet/data/elephant restore" in review
    shown = re.search(r'<pre class="manifest" id="manifest">(.*?)</pre>', review, re.S)
    assert shown is not None
    manifest = yaml.safe_load(_unescape(shown.group(1)))
    assert crd.validate(manifest) == []
    source = manifest["spec"]["dataSource"]["postgresCluster"]
    assert source["clusterName"] == "hippo" and source["repoName"] == "repo1"
    assert '--target="2026-11-24 09:30:00+00"' in source["options"]
    assert "--type=time" in source["options"] and "--db-include=reporting" in source["options"]


def _unescape(text: str) -> str:
    return (text.replace("&quot;", '"').replace("&#x27;", "'").replace("&lt;", "<")
            .replace("&gt;", ">").replace("&amp;", "&"))


def test_submit_creates_the_target_and_the_operation(
    client: Client, window: Repository, hx, fake: FakePlatform, dispatched  # type: ignore[no-untyped-def]
) -> None:
    draft = _through_target(client, window, hx)
    r = client.post(f"/clone/{draft.id}/submit/", {"version": draft.version}, **hx)
    op = Operation.objects.get(kind="clone")
    assert r["HX-Redirect"] == op.get_absolute_url()
    assert (op.cluster.name, op.cluster.state, op.cluster.role) == ("elephant", "restoring",
                                                                   "unknown")
    assert op.params["source"] == {"platform": "local", "namespace": "local", "name": "hippo"}
    assert op.events.get().message == (
        "Clone of hippo into elephant at 2026-11-24 09:30:00 UTC requested.")
    draft.refresh_from_db()
    assert draft.operation == op
    # The draft is done: its steps now lead to the operation, and a second submit is refused.
    assert client.get(_url(draft, "point"))["Location"] == op.get_absolute_url()
    again = client.post(f"/clone/{draft.id}/submit/", {"version": draft.version}, **hx)
    assert again.status_code == 422 and clones.DRAFT_SUBMITTED in again.content.decode()
    assert Operation.objects.filter(kind="clone").count() == 1


def test_a_stale_review_cannot_be_submitted(
    client: Client, window: Repository, hx, fake: FakePlatform  # type: ignore[no-untyped-def]
) -> None:
    draft = _through_target(client, window, hx)
    stale = draft.version
    client.post(_url(draft, "target"), {**TARGET, "name": "rhino"}, **hx)  # another operator
    r = client.post(f"/clone/{draft.id}/submit/", {"version": stale}, **hx)
    assert r.status_code == 422
    assert clones.DRAFT_CHANGED in r.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("point", "field", "message"),
    [
        ({**POINT, "clock": "10:30:00"}, "clock", rules.TIME_AFTER_WINDOW.format(
            when="2026-11-24 10:30:00 UTC", repo="repo1", latest="2026-11-24 10:00:00 UTC")),
        ({**POINT, "clock": "08:59:59"}, "clock", rules.TIME_BEFORE_WINDOW.format(
            when="2026-11-24 08:59:59 UTC", repo="repo1", earliest="2026-11-24 09:00:00 UTC")),
        ({**POINT, "clock": ""}, "clock", "A time target needs a date, a time of day and a time"),
        ({**POINT, "zone": "Mars/Olympus"}, "zone", "Pick a time zone from the list."),
        ({"kind": "set", "label": ""}, "label", "Pick the backup set to restore."),
        ({"kind": "set", "label": "20261124-000000F"}, "label", "Pick a backup set of this repo."),
        ({"kind": "lsn", "lsn": "zz"}, "lsn", "An LSN looks like 0/3000060"),
        ({"kind": "xid", "xid": "-4"}, "xid", "Ensure this value is greater than or equal to 1."),
        ({"kind": "name", "name": "x;rm -rf /"}, "name", "A restore point name is 1 to 63"),
        ({"kind": "teleport"}, "kind", "Select a valid choice."),
    ],
)
def test_the_point_step_refuses_with_a_message_next_to_the_field(
    client: Client, window: Repository, hx, point: dict[str, str], field: str, message: str  # type: ignore[no-untyped-def]
) -> None:
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    r = client.post(_url(draft, "point"), point, **hx)
    assert r.status_code == 422
    html = _unescape(r.content.decode())
    error = re.search(rf'id="error-{field}">(.*?)</p>', html, re.S)
    assert error is not None, html
    assert message in error.group(1)
    draft.refresh_from_db()
    assert draft.point == {} and draft.reached == "point"


def test_the_time_field_resolves_any_zone_to_utc(client: Client, window: Repository, hx) -> None:  # type: ignore[no-untyped-def]
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    preview = {**POINT, "clock": "04:30:00", "zone": "America/New_York", "_preview": "1"}
    r = client.post(_url(draft, "point"), preview, **hx)
    assert r.status_code == 200
    html = r.content.decode()
    assert '<p class="resolved" id="resolved-utc">= <strong>2026-11-24 09:30:00 UTC' in html
    assert "2026-11-24 09:30:00+00" in html
    draft.refresh_from_db()
    assert draft.point == {}  # a preview saves nothing


def test_a_time_skipped_by_daylight_saving_is_refused(
    client: Client, window: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    r = client.post(_url(draft, "point"), {"kind": "time", "date": "2026-03-29",
                                           "clock": "02:30:00", "zone": "Europe/Paris"}, **hx)
    assert r.status_code == 422
    assert "does not exist on 2026-03-29 in Europe/Paris" in r.content.decode()


def test_near_a_backup_end_it_suggests_immediate(client: Client, window: Repository, hx) -> None:  # type: ignore[no-untyped-def]
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    r = client.post(_url(draft, "point"), {**POINT, "clock": "09:00:04", "_preview": "1"}, **hx)
    expected = rules.SUGGEST_IMMEDIATE.format(seconds=4, label="20261124-090000F")
    assert expected in _unescape(r.content.decode())


@pytest.mark.parametrize(
    ("target", "field", "message"),
    [
        ({"name": "Elephant"}, "name", "DNS-1035"),
        ({"name": "1elephant"}, "name", "DNS-1035"),
        ({"name": "e" * 40}, "name", "PGO allows"),
        ({"name": "hippo"}, "name", clones.NAME_SAME_AS_SOURCE.format(source="hippo")),
        ({"name": "rhino"}, "name", clones.NAME_TAKEN.format(name="rhino", namespace="local")),
        ({"name": "onhost"}, "name", clones.NAME_TAKEN.format(name="onhost", namespace="local")),
        ({"name": "elephant", "storage": "lots"}, "storage", "A size like 10Gi"),
        ({"name": "elephant", "process_max": "99"}, "process_max", "less than or equal to 16"),
        ({"name": "elephant", "db_include": ["nope"]}, "db_include",
         "nope is not a database of the backup set"),
    ],
)
def test_the_target_step_refuses_with_a_message_next_to_the_field(
    client: Client, window: Repository, hx, fake: FakePlatform,  # type: ignore[no-untyped-def]
    target: dict[str, str], field: str, message: str,
) -> None:
    ClusterFactory(name="rhino")
    fake.add("onhost")  # on the platform, not yet in the console's inventory
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    client.post(_url(draft, "point"), POINT, **hx)
    r = client.post(_url(draft, "target"), {"storage": "1Gi", **target}, **hx)
    assert r.status_code == 422
    error = re.search(rf'id="error-{field}">(.*?)</p>', _unescape(r.content.decode()), re.S)
    assert error is not None and message in error.group(1), r.content.decode()[-3000:]
    draft.refresh_from_db()
    assert draft.reached == "target"


def test_the_source_step_offers_only_repos_with_backups(client: Client, window: Repository,
                                                        hx) -> None:  # type: ignore[no-untyped-def]
    RepositoryFactory(cluster=window.cluster, name="repo2")  # empty
    bare = RepositoryFactory(cluster=ClusterFactory(name="bare")).cluster
    draft = _draft(client, window.cluster)
    page = client.get(_url(draft, "source")).content.decode()
    assert 'value="repo2"' not in page and ">bare<" not in page
    r = client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo2"}, **hx)
    assert r.status_code == 422
    assert "Pick one of the source's repos" in _unescape(r.content.decode())
    r = client.post(_url(draft, "source"), {"source": bare.pk, "repo": "repo1"}, **hx)
    assert r.status_code == 422


def test_steps_not_reached_yet_redirect_back(client: Client, window: Repository) -> None:
    draft = _draft(client, window.cluster)
    for step in ("point", "target", "review"):
        r = client.get(_url(draft, step))
        assert r.status_code == 302 and r["Location"] == _url(draft, "source")


@pytest.mark.parametrize("step", ["source", "point", "target", "review", "submit"])
def test_junk_posted_to_any_step_is_never_a_500(
    client: Client, window: Repository, hx, fake: FakePlatform, step: str  # type: ignore[no-untyped-def]
) -> None:
    draft = _through_target(client, window, hx)
    url = f"/clone/{draft.id}/submit/" if step == "submit" else _url(draft, step)
    for data in JUNK:
        for headers in ({}, hx):
            r = client.post(url, data, **headers)
            assert r.status_code in (200, 302, 422), (data, r.status_code)
    assert not Operation.objects.exists()
    assert client.post("/clone/not-a-uuid/point/", {}).status_code == 404
    assert client.post(f"/clone/{draft.id}/elsewhere/", {}).status_code == 404


def test_an_unknown_draft_is_404(client: Client) -> None:
    assert client.get("/clone/00000000-0000-0000-0000-000000000000/source/").status_code == 404


def test_a_draft_picks_the_set_the_restore_starts_from(window: Repository) -> None:
    later = BackupFactory(repository=window, label="20261124-093000F",
                          stopped_at=dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC))
    draft = CloneDraft.objects.create(source=window.cluster, repo_name="repo1", point={
        "kind": "time", "time": "2026-11-24T09:45:00+00:00"})
    assert clones.base_backup(draft) == later
    assert timezone.now() > later.stopped_at


@pytest.fixture
def kube_hippo(db) -> Repository:  # type: ignore[no-untyped-def]
    from restores import platforms

    platform = FakePlatform(namespace="prod")
    platform.name = "kubernetes"
    platforms.override("kubernetes", platform)
    repo = RepositoryFactory(cluster=ClusterFactory(name="hippo", platform="kubernetes",
                                                    namespace="prod"))
    BackupFactory(repository=repo, label="20261124-090000F", databases=["hippo"])
    yield repo
    platforms.override("kubernetes", None)


def test_on_kubernetes_the_restore_job_is_sized_and_placed(
    client: Client, kube_hippo: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    draft = _draft(client, kube_hippo.cluster)
    client.post(_url(draft, "source"), {"source": kube_hippo.cluster.pk, "repo": "repo1"}, **hx)
    client.post(_url(draft, "point"), POINT, **hx)
    page = client.get(_url(draft, "target")).content.decode()
    assert 'id="restore-job"' in page and 'name="namespace"' in page
    bad = client.post(_url(draft, "target"), {**TARGET, "namespace": "dr", "cpu_request": "lots",
                                              "node_labels": "no label here"}, **hx)
    assert bad.status_code == 422
    html = _unescape(bad.content.decode())
    assert "A CPU amount like 500m or 2." in html
    assert "Line 1 is not a key=value label: no label here" in html
    r = client.post(_url(draft, "target"), {
        **TARGET, "namespace": "dr", "cpu_request": "500m", "memory_limit": "2Gi",
        "node_labels": "disktype=ssd\n\nzone=eu-1", "toleration": "dedicated=restore:NoSchedule",
    }, **hx)
    assert r.status_code == 200, r.content.decode()
    review = _unescape(client.get(_url(draft, "review")).content.decode())
    shown = re.search(r'<pre class="manifest" id="manifest">(.*?)</pre>', review, re.S)
    assert shown is not None
    manifest = yaml.safe_load(shown.group(1))
    assert crd.validate(manifest) == []
    assert manifest["metadata"]["namespace"] == "dr"
    source = manifest["spec"]["dataSource"]["postgresCluster"]
    assert source["clusterNamespace"] == "prod"
    assert source["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}}
    assert source["tolerations"] == [{"key": "dedicated", "operator": "Equal",
                                      "value": "restore", "effect": "NoSchedule"}]
    terms = source["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {e["key"] for e in terms["nodeSelectorTerms"][0]["matchExpressions"]} == {
        "disktype", "zone"}


def test_parallelism_is_bounded_by_the_platform(
    client: Client, window: Repository, hx, fake: FakePlatform  # type: ignore[no-untyped-def]
) -> None:
    fake.process_max_limit = 3
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    client.post(_url(draft, "point"), POINT, **hx)
    r = client.post(_url(draft, "target"), {**TARGET, "process_max": "4"}, **hx)
    assert r.status_code == 422
    assert "less than or equal to 3" in r.content.decode()
    assert 'id="restore-job"' not in r.content.decode()  # local: no Kubernetes fields


def test_a_time_with_milliseconds_comes_back_as_the_time_input_shows_it(
    client: Client, window: Repository, hx  # type: ignore[no-untyped-def]
) -> None:
    draft = _draft(client, window.cluster)
    client.post(_url(draft, "source"), {"source": window.cluster.pk, "repo": "repo1"}, **hx)
    client.post(_url(draft, "point"), {**POINT, "clock": "09:30:00.123"}, **hx)
    draft.refresh_from_db()
    assert draft.point["time"] == "2026-11-24T09:30:00.123000+00:00"
    page = client.get(_url(draft, "point")).content.decode()
    assert 'value="09:30:00.123"' in page  # an <input type="time"> takes at most milliseconds
    assert "2026-11-24 09:30:00.123+00" in page


def html_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def test_the_wizard_pages_take_a_cloud_source_through_to_a_running_clone(
    console: Console, admin_client: Client
) -> None:
    start = admin_client.post("/clone/")
    source_url = start["Location"]
    page = admin_client.get(source_url)
    assert 'id="cloud-source"' in page.content.decode()

    form = {"origin": "cloud", "namespace": NS, "storage": "s3", "bucket": "my-bucket",
            "endpoint": "", "region": "ca-central-1", "repo_name": "repo1", "path": HIPPO_PATH,
            "stanza": "db", "configuration_secret": "pgo-s3-creds", "postgres_version": "16",
            "global_options": "repo1-s3-uri-style=path\nnot a setting",
            "backups_to_cloud": "volume"}
    bad = admin_client.post(source_url, form)
    assert bad.status_code == 422
    text = html_text(bad)
    assert "S3 needs an endpoint and a region." in text
    assert "Line 2 is not a pgBackRest setting like repo1-s3-uri-style=path" in text
    assert 'value="my-bucket"' in text  # nothing typed is lost
    draft = CloneDraft.objects.get()
    assert draft.cloud == {}

    form.update(endpoint="s3.ca-central-1.amazonaws.com",
                global_options="repo1-s3-uri-style=path")
    ok = admin_client.post(source_url, form)
    assert ok.status_code == 302 and ok["Location"].endswith("/point/")
    draft.refresh_from_db()
    assert draft.cloud["global_options"] == [["repo1-s3-uri-style", "path"]]

    point = html_text(admin_client.get(ok["Location"]))
    assert ORIGIN in point and clones.CLOUD_UNCHECKED in point
    assert 'id="window-earliest"' not in point  # no window to show
    as_set = html_text(admin_client.post(ok["Location"], {"kind": "set", "_preview": "1"}))
    assert '<input type="text" name="label"' in as_set  # the set's label is typed
    bad_label = admin_client.post(ok["Location"], {"kind": "set", "label": "last tuesday"})
    assert bad_label.status_code == 422
    chosen = admin_client.post(ok["Location"], {"kind": "set", "label": "20261124-093012F"})
    assert chosen.status_code == 302

    target_url = chosen["Location"]
    target = html_text(admin_client.get(target_url))
    assert clones.CLOUD_DB_UNCHECKED in target
    done = admin_client.post(target_url, {"name": "rhino", "namespace": NS, "storage": "1Gi",
                                          "db_include": "app, reports"})
    assert done.status_code == 302, done.content.decode()
    draft.refresh_from_db()
    assert draft.target["db_include"] == ["app", "reports"]
    assert draft.target["namespace"] == NS

    review = html_text(admin_client.get(done["Location"]))
    assert "repo1-s3-uri-style: path" in review
    assert "--set=20261124-093012F" in review
    assert clones.CLOUD_UNCHECKED in review
    started = admin_client.post(f"/clone/{draft.id}/submit/", {"version": draft.version})
    assert started.status_code == 302
    op = Operation.objects.get()
    assert console.run(op).status == Status.SUCCEEDED, messages(op)
    assert Cluster.objects.get(name="rhino").state == "ready"
    page = admin_client.get(op.get_absolute_url())
    assert page.status_code == 200
    assert f"<h1>Clone of {ORIGIN} into rhino</h1>" in html_text(page)
    assert f"restored from {ORIGIN}" in html_text(page)


def cloud_post(options: str) -> dict[str, str]:
    return {"origin": "cloud", "namespace": "db", "storage": "s3", "bucket": "my-bucket",
            "endpoint": "s3.example.org", "region": "ca-central-1",
            "path": "/pgbackrest/repo1", "repo_name": "repo1", "stanza": "db",
            "configuration_secret": "pgo-s3-creds", "postgres_version": "16",
            "backups_to_cloud": "volume", "global_options": options}


@pytest.fixture
def cloud_enabled(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local", "kubernetes"]
    settings.DR_KUBE_NAMESPACES = ["db"]


@pytest.mark.parametrize("option", CREDENTIAL_OPTIONS)
def test_a_credential_in_the_repo_settings_is_refused_next_to_the_field(
    client: Client, cloud_enabled: None, option: str, hx: dict[str, str]
) -> None:
    draft = clones.draft_create(user=None)
    url = f"/clone/{draft.pk}/source/"
    r = client.post(url, cloud_post(f"repo1-s3-uri-style=path\n{option}={SECRET}"), **hx)
    assert r.status_code == 422
    page = r.content.decode()
    assert GLOBAL_LINE_CREDENTIAL.format(n=2, key=option).split(":")[0] in page
    assert 'id="error-global_options"' in page
    assert SECRET not in page.split('name="global_options"')[0]  # not echoed in a message
    draft.refresh_from_db()
    assert draft.cloud == {} and draft.reached == CloneDraft.Step.SOURCE
    stored = json.dumps([list(CloneDraft.objects.values()), list(Operation.objects.values()),
                         list(AuditEntry.objects.values())], default=str)
    assert SECRET not in stored


@pytest.mark.parametrize("option", CREDENTIAL_OPTIONS)
def test_the_manifest_builder_refuses_a_credential_without_quoting_it(option: str) -> None:
    source = manifests.CloudSource(
        repo=manifests.RepoSpec("repo1", s3=manifests.S3("my-bucket", "s3.example.org",
                                                          "ca-central-1")),
        global_options=((option, SECRET),))
    spec = manifests.ClusterSpec(name="x", namespace="db", postgres_version=16,
                                 repos=(manifests.RepoSpec("repo1", volume_size="1Gi"),))
    with pytest.raises(PermanentError) as refused:
        manifests.clone_manifest(spec, manifests.CloneSource(cloud=source))
    assert refused.value.message == manifests.GLOBAL_CREDENTIAL.format(key=option)
    assert SECRET not in refused.value.message


@pytest.mark.parametrize("option", HARMLESS)
def test_settings_that_only_say_how_to_authenticate_are_kept(option: str) -> None:
    assert not is_credential(option)


def test_scrub_removes_credentials_wherever_they_sit() -> None:
    data = {"global_options": [["repo1-s3-key", SECRET], ["repo1-s3-uri-style", "path"]],
            "nested": {"repo1-cipher-pass": SECRET, "ok": [1, 2]}}
    assert SECRET not in json.dumps(scrub(data))
    assert scrub(data)["global_options"][1] == ["repo1-s3-uri-style", "path"]
