"""The clone / PITR wizard's services on Kubernetes, end to end: draft steps, the review with the
API server's dry run, submit, and the reconcile loop creating the clone; from a live cluster's
repo, then from a cloud repo no live cluster uses (the seed's elephant and rhino); the refusals
next to their fields and the ways a clone fails."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
import yaml
from django.test import Client

from restores.models import CloneDraft, Cluster, Operation
from restores.platforms.kubernetes.api import USER_AGENT
from restores.platforms.targets import RestoreTarget
from restores.services import clones
from restores.steps import clones as clones_steps
from tests.kube.fixtures import HIPPO_PATH, NS, ORIGIN, Console, reachable_time
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db
Status = Operation.Status
OPERATION = "dr-console/operation"
JOB = {"requests": [["cpu", "250m"]], "limits": [["memory", "1Gi"]],
       "node_labels": [["disktype", "ssd"]], "toleration": "dedicated=restore:NoSchedule"}
JOB_FIELDS = {
    "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "disktype", "operator": "In", "values": ["ssd"]}]}]}}},
    "tolerations": [{"key": "dedicated", "value": "restore", "effect": "NoSchedule",
                     "operator": "Equal"}],
}
S3 = clones.CloudAnswers(
    namespace=NS, storage="s3", bucket="my-bucket", endpoint="s3.ca-central-1.amazonaws.com",
    region="ca-central-1", path=HIPPO_PATH, stanza="db", configuration_secret="pgo-s3-creds",
    postgres_version=16,
)
WHEN = dt.datetime(2026, 11, 24, 10, 14, 3, tzinfo=dt.UTC)


def draft_to_review(source: Cluster, *, point: RestoreTarget | None = None,
                    name: str = "elephant", namespace: str = NS,
                    restore_job: dict[str, Any] | None = None) -> CloneDraft:
    """The wizard's source, point and target steps, as the views call them."""
    draft = clones.draft_create(user=None, source=source)
    clones.draft_save_source(user=None, draft=draft, cluster=source, repo_name="repo1")
    point = point or RestoreTarget()
    clones.draft_save_point(user=None, draft=draft, point=point, display={
        "date": point.time.date().isoformat() if point.time else "",
        "clock": point.time.time().isoformat() if point.time else "", "zone": "UTC"})
    clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(
        name=name, namespace=namespace, storage="2Gi", restore_job=restore_job or {}))
    return draft


def submit(draft: CloneDraft) -> Operation:
    return clones.draft_submit(draft=draft, version=draft.version, user=None)


def test_a_point_in_time_clone_is_created_as_reviewed_and_comes_up_ready(
    console: Console, hippo_synced: Cluster
) -> None:
    server = console.server
    created: list[dict[str, Any]] = []
    server.on_change.append(lambda kind, obj, old: created.append(obj) if (
        kind == "ADDED" and obj["metadata"]["name"] == "elephant") else None)
    when = reachable_time(hippo_synced)
    draft = draft_to_review(hippo_synced, point=RestoreTarget(kind="time", time=when),
                            restore_job=JOB)

    review = clones.draft_review(draft)
    shown = yaml.safe_load(review.manifest_yaml)
    source = shown["spec"]["dataSource"]["postgresCluster"]
    target = f'--target="{when:%Y-%m-%d %H:%M:%S}+00"'
    assert source["options"] == ["--type=time", target]
    assert {k: source[k] for k in JOB_FIELDS} == JOB_FIELDS
    # The plan is the platform's: the manifest it creates, accepted by a server dry run.
    assert review.plan.steps[1] == "The API server accepts this manifest (server-side dry run)."
    planned = review.plan.manifest["spec"]["dataSource"]["postgresCluster"]
    assert {k: planned[k] for k in JOB_FIELDS} == JOB_FIELDS
    assert planned["options"] == source["options"]
    assert review.kubectl[0] == (
        "kubectl apply --server-side --field-manager=dr-console -f elephant.yaml")
    mine = [r for r in server.requests if r.verb == "create" and r.user_agent == USER_AGENT]
    assert [r.query.startswith("dryRun=All") for r in mine] == [True]
    assert created == []

    op = submit(draft)
    row = console.cluster("elephant")
    assert (row.role, row.state) == ("unknown", "restoring")
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    assert float(op.result["restore_seconds"]) >= 0
    assert messages(op)[-1] == "elephant is running, restored from hippo's repo1."

    # What the server was asked to create: the point and the restore Job fields, as sent.
    [first] = created
    assert first["metadata"]["annotations"] == {OPERATION: op.refs["trigger"]}
    sent = first["spec"]["dataSource"]["postgresCluster"]
    assert sent["clusterName"] == "hippo" and sent["repoName"] == "repo1"
    assert sent["options"] == ["--type=time", target]
    assert {k: sent[k] for k in JOB_FIELDS} == JOB_FIELDS
    # And now: restored, and never to restore again (H1).
    obj = console.obj("elephant")
    assert "dataSource" not in obj["spec"]
    assert obj["status"]["pgbackrest"]["restore"]["id"] == "~pgo-bootstrap-elephant"
    # Creates: the review's dry run, the first step's plan (dry run again), the clone.
    mine = [r for r in server.requests if r.verb == "create" and r.user_agent == USER_AGENT]
    assert [r.query.startswith("dryRun=All") for r in mine] == [True, True, False]
    row.refresh_from_db()
    assert (row.role, row.state, row.present) == ("primary", "ready", True)
    assert list(row.repositories.values_list("name", flat=True)) == ["repo1"]


def test_a_latest_clone_into_another_name_comes_up_ready(
    console: Console, hippo_synced: Cluster
) -> None:
    op = console.run(submit(draft_to_review(hippo_synced, name="copy")))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert console.obj("copy")["spec"].get("dataSource") is None
    assert console.cluster("copy").state == "ready"


def test_the_servers_dry_run_refusal_is_the_reviews_error(console: Console,
                                                          hippo_synced: Cluster,
                                                          admin_client: Client) -> None:
    draft = draft_to_review(hippo_synced)
    console.server.faults.error(422, verb="create", resource="postgresclusters",
                                message="spec.instances: Required value")
    with pytest.raises(clones.ServiceError) as refused:
        clones.draft_review(draft)
    assert refused.value.message == (
        "The API server refuses the manifest: spec.instances: Required value")
    # The review page says so, and offers no start button.
    console.server.faults.error(422, verb="create", resource="postgresclusters",
                                message="spec.instances: Required value")
    page = admin_client.get(f"/clone/{draft.id}/review/")
    assert page.status_code == 422
    html = page.content.decode()
    assert "The API server refuses the manifest: spec.instances: Required value" in html
    assert "Start the restore" not in html
    assert console.server.store.get("postgresclusters", NS, "elephant") is None


def test_the_target_step_checks_the_name_and_namespace_on_the_server(
    console: Console, hippo_synced: Cluster, kube_api, hippo_manifest  # type: ignore[no-untyped-def]
) -> None:
    # someone else's, not in the console yet
    kube_api.create_cluster(NS, hippo_manifest("elephant"))
    with pytest.raises(clones.ServiceError) as taken:
        draft_to_review(hippo_synced)
    assert taken.value.message == clones.NAME_TAKEN.format(name="elephant", namespace=NS)
    assert taken.value.field == "name"
    with pytest.raises(clones.ServiceError) as elsewhere:
        draft_to_review(hippo_synced, name="copy", namespace="elsewhere")
    assert elsewhere.value.field == "namespace"
    assert elsewhere.value.message == (
        "Namespace elsewhere is not one the console manages (db).")


def test_a_source_gone_before_pgo_restores_fails_with_its_reason(
    console: Console, hippo_synced: Cluster, kube_api  # type: ignore[no-untyped-def]
) -> None:
    console.emu.deferred.add("elephant")  # PGO gets to the clone after the source is gone
    op = submit(draft_to_review(hippo_synced))
    op = run_step(op)  # checks the window again, plans (dry run), creates the clone
    assert op.status == Status.RUNNING
    assert console.obj("elephant")["spec"]["dataSource"]["postgresCluster"]["clusterName"] == (
        "hippo")
    kube_api.delete_cluster(NS, "hippo")
    console.emu.settle()
    op = console.run(op)
    assert op.status == Status.FAILED
    assert op.error_reason.startswith(
        'PGO refused the data source: PostgresCluster "hippo" does not exist. Fix: make sure '
        "the source cluster and its repo exist")
    assert op.error_fix == clones_steps.CLONE_FAILED_FIX
    assert "InvalidDataSource" in op.events.get(step="failed").detail


def test_a_failed_restore_job_fails_the_clone(console: Console, hippo_synced: Cluster) -> None:
    console.emu.fail_restore.add("elephant")
    op = console.run(submit(draft_to_review(hippo_synced)))
    assert op.status == Status.FAILED
    assert "The restore Job elephant-pgbackrest-restore failed" in op.error_reason
    assert "kubectl -n db logs job/elephant-pgbackrest-restore" in op.error_reason
    assert op.error_fix == clones_steps.CLONE_FAILED_FIX


def test_a_restore_pgo_never_starts_fails_as_stuck(console: Console,
                                                   hippo_synced: Cluster) -> None:
    console.settings.DR_KUBE_STUCK_AFTER = 2
    console.new_worker()
    console.emu.deferred.add("elephant")  # PGO never looks (no tick in this test)
    op = run_step(run_step(submit(draft_to_review(hippo_synced))))
    assert run_step(op).status == Status.RUNNING
    console.clock.offset += dt.timedelta(seconds=5)
    op = run_step(op)
    assert op.status == Status.FAILED
    assert op.error_reason.startswith("PGO has not started the restore after")
    assert "Fix: check that PGO watches namespace db" in op.error_reason


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


def test_a_point_in_time_clone_from_s3_succeeds_with_no_source_cluster(console: Console) -> None:
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
def test_a_clone_restores_from_a_gcs_or_azure_repo(
    console: Console, storage: str, fields: dict[str, str], expected: dict[str, Any]
) -> None:
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
