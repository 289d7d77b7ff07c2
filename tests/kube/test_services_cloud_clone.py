"""A clone from a cloud repo that no live cluster uses (§3.4, the seed's elephant and rhino),
end to end: the wizard's views and services, the API server's dry run, submit, and the
reconcile loop creating the clone through the real client, the test API server and the PGO
emulator; the refusals next to their fields; a restore Job that cannot open the repo."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Any

import pytest
import yaml
from django.test import Client

from restores.models import CloneDraft, Cluster, Operation
from restores.platforms.kubernetes.api import USER_AGENT
from restores.platforms.targets import RestoreTarget
from restores.services import clones
from tests.kube.fixtures import NS, Console
from tests.worker import messages

pytestmark = pytest.mark.django_db


Status = Operation.Status
HIPPO_PATH = "/pgbackrest/postgres-operator/hippo/repo1"
S3 = clones.CloudAnswers(
    namespace=NS, storage="s3", bucket="my-bucket", endpoint="s3.ca-central-1.amazonaws.com",
    region="ca-central-1", path=HIPPO_PATH, stanza="db", configuration_secret="pgo-s3-creds",
    postgres_version=16,
)
ORIGIN = f"s3://my-bucket{HIPPO_PATH} (stanza db)"
WHEN = dt.datetime(2026, 11, 24, 10, 14, 3, tzinfo=dt.UTC)


def cloud_draft(answers: clones.CloudAnswers = S3, *, name: str = "elephant",
                point: RestoreTarget | None = None,
                db_include: tuple[str, ...] = ()) -> CloneDraft:
    """Source, point and target, as the views call them; no cluster anywhere."""
    draft = clones.draft_create(user=None)
    clones.draft_save_cloud_source(user=None, draft=draft, answers=answers)
    assert draft.reached == CloneDraft.Step.POINT
    clones.draft_save_point(user=None, draft=draft,
                            point=point or RestoreTarget(kind="time", time=WHEN),
                            display={"date": "2026-11-24", "clock": "10:14:03", "zone": "UTC"})
    clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(
        name=name, namespace=NS, storage="2Gi", db_include=db_include))
    return draft


def html_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def submit(draft: CloneDraft) -> Operation:
    return clones.draft_submit(draft=draft, version=draft.version, user=None)


def test_a_point_in_time_clone_from_s3_with_no_source_cluster(console: Console) -> None:
    server = console.server
    created: list[dict[str, Any]] = []
    server.on_change.append(lambda kind, obj, old: created.append(obj) if (
        kind == "ADDED" and obj["metadata"]["name"] == "elephant") else None)
    assert server.store.list("postgresclusters", NS) == []  # no hippo, live or not

    draft = cloud_draft(db_include=("app",))
    review = clones.draft_review(draft)
    shown = yaml.safe_load(review.manifest_yaml)
    assert review.plan.manifest == shown
    data_source = shown["spec"]["dataSource"]
    assert list(data_source) == ["pgbackrest"]  # exactly one data source
    assert data_source["pgbackrest"] == {
        "stanza": "db",
        "configuration": [{"secret": {"name": "pgo-s3-creds"}}],
        "global": {"repo1-path": HIPPO_PATH},
        "repo": {"name": "repo1", "s3": {"bucket": "my-bucket",
                                         "endpoint": "s3.ca-central-1.amazonaws.com",
                                         "region": "ca-central-1"}},
        "options": ["--type=time", '--target="2026-11-24 10:14:03+00"', "--db-include=app"],
    }
    assert shown["spec"]["postgresVersion"] == 16
    assert review.plan.steps[0].startswith(
        f"Create PostgresCluster {NS}/elephant; PGO restores it from the cloud repo {ORIGIN}")
    assert review.plan.steps[1] == "The API server accepts this manifest (server-side dry run)."
    assert review.verdict is None
    assert review.warnings == (clones.CLOUD_UNCHECKED, clones.CLOUD_DB_UNCHECKED)
    assert created == []

    op = submit(draft)
    row = console.cluster("elephant")
    assert (row.role, row.state, row.pg_version) == ("unknown", "restoring", "16")
    assert row.state_message == f"Being restored from {ORIGIN}."
    assert op.params["source"] == {"platform": "kubernetes", "cloud": draft.cloud}
    assert "Clone of " + ORIGIN + " into elephant at 2026-11-24 10:14:03 UTC" in messages(op)[0]
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == f"elephant is running, restored from {ORIGIN}."

    [first] = created  # one create, as reviewed (bar the operation's id)
    assert first["spec"]["dataSource"] == data_source
    assert first["metadata"]["annotations"] == {"dr-console/operation": op.refs["trigger"]}
    obj = console.obj("elephant")
    assert "dataSource" not in obj["spec"]  # H1: never restores again
    assert obj["status"]["pgbackrest"]["restore"]["id"] == "~pgo-bootstrap-elephant"
    # The clone backs up to a volume of its own (the seed's rhino): the source's bucket and
    # path are left alone.
    own = obj["spec"]["backups"]["pgbackrest"]
    assert [sorted(r) for r in own["repos"]] == [["name", "volume"]]
    row.refresh_from_db()
    assert (row.role, row.state, row.present) == ("primary", "ready", True)
    mine = [r for r in server.requests if r.verb == "create" and r.user_agent == USER_AGENT]
    assert [r.query.startswith("dryRun=All") for r in mine] == [True, True, False]


def test_the_clone_can_back_up_to_the_same_bucket_at_its_own_path(console: Console) -> None:
    """The seed's elephant: the same storage and credentials Secret, its own repo1-path."""
    draft = cloud_draft(dataclasses.replace(S3, backups_to_cloud=True),
                        point=RestoreTarget())
    own = clones.draft_review(draft).plan.manifest["spec"]["backups"]["pgbackrest"]
    assert own["configuration"] == [{"secret": {"name": "pgo-s3-creds"}}]
    assert own["repos"] == [{"name": "repo1", "s3": {
        "bucket": "my-bucket", "endpoint": "s3.ca-central-1.amazonaws.com",
        "region": "ca-central-1"}}]
    assert own["global"]["repo1-path"] == f"/pgbackrest/{NS}/elephant/repo1"
    op = console.run(submit(draft))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert console.obj("elephant")["spec"]["backups"]["pgbackrest"] == own


@pytest.mark.parametrize("storage, fields, expected", [
    ("gcs", {"bucket": "gcs-bucket"}, {"gcs": {"bucket": "gcs-bucket"}}),
    ("azure", {"bucket": "container1"}, {"azure": {"container": "container1"}}),
])
def test_gcs_and_azure_repos(console: Console, storage: str, fields: dict[str, str],
                             expected: dict[str, Any]) -> None:
    answers = dataclasses.replace(S3, storage=storage, endpoint="", region="", **fields)
    draft = cloud_draft(answers, point=RestoreTarget())
    repo = clones.draft_review(draft).plan.manifest["spec"]["dataSource"]["pgbackrest"]["repo"]
    assert repo == {"name": "repo1", **expected}
    op = console.run(submit(draft))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert "dataSource" not in console.obj("elephant")["spec"]


def test_a_restore_job_that_cannot_open_the_repo_fails_with_what_to_check(
    console: Console,
) -> None:
    console.emu.fail_restore.add("elephant")  # e.g. the Secret's keys do not open the bucket
    op = console.run(submit(cloud_draft()))
    assert op.status == Status.FAILED
    assert "PGO does not check a cloud repo beforehand" in op.error_reason
    assert "(Secret pgo-s3-creds)" in op.error_reason
    assert f"kubectl -n {NS} logs job/elephant-pgbackrest-restore" in op.error_reason


@pytest.mark.parametrize("change, field, message", [
    ({"bucket": "Bad_Bucket"}, "bucket", "The bucket 'Bad_Bucket' of repo repo1 is not valid."),
    ({"path": "relative/path"}, "path", "The repo path 'relative/path' must be absolute"),
    ({"stanza": "a b"}, "stanza", "The pgBackRest setting 'stanza'='a b' is not valid."),
    ({"configuration_secret": "Not_A_Name"}, "configuration_secret", "'Not_A_Name' is not"),
    ({"postgres_version": 9}, "postgres_version", "The PostgreSQL version must be"),
    ({"global_options": (("repo2-s3-uri-style", "path"),)}, "global_options",
     "The setting 'repo2-s3-uri-style' is not for the data source's repo1."),
    ({"global_options": (("repo1-s3-key-secret", "wJalrXUtnFEMI/K7MDENG"),)}, "global_options",
     "repo1-s3-key-secret holds a credential: it never goes into a manifest."),
    ({"namespace": "elsewhere"}, "namespace",
     "Namespace elsewhere is not one the console manages (db)."),
])
def test_a_bad_cloud_source_is_refused_next_to_its_field(console: Console, change, field,
                                                          message) -> None:  # type: ignore[no-untyped-def]
    draft = clones.draft_create(user=None)
    with pytest.raises(clones.ServiceError) as refused:
        clones.draft_save_cloud_source(user=None, draft=draft,
                                       answers=dataclasses.replace(S3, **change))
    assert (refused.value.field, refused.value.message[:len(message)]) == (field, message)
    draft.refresh_from_db()
    assert (draft.cloud, draft.reached) == ({}, CloneDraft.Step.SOURCE)  # nothing stored


def test_a_cloud_source_needs_the_kubernetes_platform(console: Console, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local"]
    with pytest.raises(clones.ServiceError) as refused:
        clones.draft_save_cloud_source(draft=clones.draft_create(user=None), answers=S3,
                                       user=None)
    assert refused.value.message == clones.CLOUD_NEEDS_KUBERNETES


def test_the_clone_stays_in_the_namespace_of_the_credentials(console: Console) -> None:
    draft = clones.draft_create(user=None)
    clones.draft_save_cloud_source(user=None, draft=draft, answers=S3)
    clones.draft_save_point(user=None, draft=draft, point=RestoreTarget(), display={})
    with pytest.raises(clones.ServiceError) as refused:
        clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(
            name="elephant", namespace="other"))
    assert refused.value.field == "namespace"
    assert refused.value.message == clones.CLOUD_SAME_NAMESPACE.format(namespace=NS)
    with pytest.raises(clones.ServiceError) as bad_db:
        clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(
            name="elephant", namespace=NS, db_include=("drop table",)))
    assert bad_db.value.field == "db_include"


def test_switching_to_a_live_source_forgets_the_cloud_one(console: Console, kube_api,
                                                         hippo_manifest) -> None:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest())
    console.emu.settle()
    console.sync()
    draft = cloud_draft()
    clones.draft_save_source(user=None, draft=draft, cluster=console.cluster("hippo"),
                             repo_name="repo1")
    assert (draft.cloud, draft.point, draft.reached) == ({}, {}, CloneDraft.Step.POINT)
    request_source = clones.draft_platform(draft)
    assert request_source == "kubernetes"


# -- the pages --------------------------------------------------------------------------------


def test_the_wizard_pages_for_a_cloud_source(console: Console, admin_client: Client) -> None:
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
