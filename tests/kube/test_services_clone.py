"""The clone / PITR wizard's services on Kubernetes, end to end: draft steps, the review with
the API server's dry run, submit, and the reconcile loop creating the clone through the real
client, the test API server and the PGO emulator; and the ways a clone fails."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from restores.models import CloneDraft, Cluster, Operation
from restores.platforms.kubernetes.api import USER_AGENT
from restores.platforms.targets import RestoreTarget
from restores.services import clones
from restores.steps import clones as clones_steps
from tests.kube.fixtures import NS, Console
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


def reachable_time(source: Cluster) -> dt.datetime:
    """The start of the repo's window (one second after the backup's whole-second stop),
    once it has passed."""
    when = source.repositories.get(name="repo1").earliest_recovery
    assert when is not None
    wait = (when - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait + 0.05)
    return when


def test_a_point_in_time_clone_through_the_wizard(console: Console,
                                                  hippo_synced: Cluster) -> None:
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


def test_a_latest_clone_into_another_name(console: Console, hippo_synced: Cluster) -> None:
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
