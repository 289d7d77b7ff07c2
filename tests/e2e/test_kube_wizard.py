"""The clone wizard on Kubernetes, in the browser: hippo is a PGO cluster on the test API
server; clone it at "latest" into `elephant` in another namespace, with the restore Job
sized and placed; the review shows the manifest, the operation page reaches succeeded, and
the server's `elephant` got exactly what the wizard sent, then lost its dataSource (H1).

Real Chromium and the real `kubernetes` client; the test API server, the PGO emulator and a
Celery worker run in this process (kube_fixtures.py says why). Every wait in the browser is
one of Playwright's auto-retrying `expect`s: no sleeps.
"""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

from restores.models import Cluster, Operation
from tests.e2e.helpers import OPERATION_URL, UUID, log_in

from . import kube_fixtures
from .kube_fixtures import NS, TARGET_NS, KubeConsole

pytestmark = pytest.mark.e2e

# The fixtures of kube_fixtures.py, by name.
kube_console, kube_hippo = kube_fixtures.kube_console, kube_fixtures.kube_hippo
kube_broker, kube_worker = kube_fixtures.kube_broker, kube_fixtures.kube_worker
kube_ticking = kube_fixtures.kube_ticking

CLONE_TIMEOUT_MS = 60_000
JOB_FIELDS = {
    "resources": {"requests": {"cpu": "250m"}},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "disktype", "operator": "In", "values": ["ssd"]}]}]}}},
    "tolerations": [{"key": "dedicated", "value": "restore", "effect": "NoSchedule",
                     "operator": "Equal"}],
}



def step_url(step: str) -> re.Pattern[str]:
    return re.compile(rf"/clone/{UUID}/{step}/$")



def test_the_clone_wizard_clones_a_pgo_cluster(
    context, live_server, kube_console: KubeConsole, kube_hippo: Cluster, kube_worker, user,  # type: ignore[no-untyped-def]
) -> None:
    page = context.new_page()
    log_in(page)

    # hippo, on the kubernetes platform
    row = page.locator('#fleet tr[data-cluster="hippo"]')
    expect(row).to_contain_text("primary")
    row.get_by_role("link", name="hippo").click()
    expect(page).to_have_url(live_server.url + "/clusters/kubernetes/db/hippo/")
    expect(page.locator("p.muted").first).to_contain_text("kubernetes · PostgreSQL 16 · ready")

    # source → point (latest) → target
    page.get_by_role("button", name="Clone / point-in-time restore…").click()
    expect(page).to_have_url(step_url("source"))
    expect(page.get_by_label("Source cluster")).to_have_value(str(kube_hippo.pk))
    expect(page.get_by_label("Repo to restore from")).to_have_value("repo1")
    page.get_by_role("button", name="Next: the point to restore to").click()
    expect(page).to_have_url(step_url("point"))
    expect(page.get_by_label("Latest: replay all archived WAL")).to_be_checked()
    page.get_by_role("button", name="Next: the new cluster").click()
    expect(page).to_have_url(step_url("target"))

    # The databases of the base backup, read by the worker through pod exec; wait for them
    # so the fieldset's refresh never races the typing.
    expect(page.get_by_label("app", exact=True)).to_be_visible()
    namespace = page.get_by_label("Namespace")
    expect(namespace).to_have_value(NS)
    expect(namespace).to_be_editable()  # fixed on the local platform, not here
    namespace.fill(TARGET_NS)
    page.get_by_label("New cluster name").fill("elephant")
    job = page.locator("#restore-job")
    job.get_by_label("CPU request").fill("250m")
    job.get_by_label("Run on nodes labelled").fill("disktype=ssd")
    job.get_by_label("Tolerate the taint").fill("dedicated=restore:NoSchedule")
    page.get_by_role("button", name="Next: review").click()
    expect(page).to_have_url(step_url("review"))

    # The review: the platform's plan (a server-side dry run) and the manifest, with the
    # restore Job's fields as typed.
    expect(page.locator("ol.plan")).to_contain_text(
        "The API server accepts this manifest (server-side dry run).")
    manifest = page.locator("#manifest")
    expect(manifest).to_contain_text("name: elephant")
    shown = yaml.safe_load(manifest.inner_text())
    assert shown["metadata"]["namespace"] == TARGET_NS
    source = shown["spec"]["dataSource"]["postgresCluster"]
    assert (source["clusterName"], source["clusterNamespace"], source["repoName"]) == (
        "hippo", NS, "repo1")
    assert {k: source[k] for k in JOB_FIELDS} == JOB_FIELDS
    assert kube_console.get(TARGET_NS, "elephant") is None  # only dry runs so far

    page.get_by_role("button", name="Start the restore").click()
    expect(page).to_have_url(OPERATION_URL)
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=CLONE_TIMEOUT_MS)
    expect(page.locator("#restore-seconds")).to_be_visible()

    op = Operation.objects.select_related("cluster").get(kind=Operation.Kind.CLONE)
    assert page.url.endswith(op.get_absolute_url())
    assert op.status == Operation.Status.SUCCEEDED and op.requested_by == user
    assert (op.cluster.namespace, op.cluster.name) == (TARGET_NS, "elephant")
    # Every step ran in the Celery worker: the first (which creates the clone) dispatched on
    # commit, the rest scheduled by the worker itself.
    assert kube_worker.ran.count("restores.advance_operation") >= 2

    # The server: elephant was created once, with what the wizard sent, and restored...
    [sent] = [o for o in kube_console.created if o["metadata"]["name"] == "elephant"]
    assert sent["metadata"]["namespace"] == TARGET_NS
    assert sent["metadata"]["annotations"] == {"dr-console/operation": op.refs["trigger"]}
    data = sent["spec"]["dataSource"]["postgresCluster"]
    assert (data["clusterName"], data["clusterNamespace"], data["repoName"]) == (
        "hippo", NS, "repo1")
    assert {k: data[k] for k in JOB_FIELDS} == JOB_FIELDS
    # ...and can never restore again: spec.dataSource is gone.
    now = kube_console.get(TARGET_NS, "elephant")
    assert now is not None and "dataSource" not in now["spec"]
    assert now["status"]["pgbackrest"]["restore"]["id"] == "~pgo-bootstrap-elephant"

    # In the fleet, as a primary.
    page.goto("/")
    elephant = page.locator('#fleet tr[data-cluster="elephant"]')
    expect(elephant).to_be_visible()
    expect(elephant.locator("span.role")).to_have_text("primary")


def test_the_clone_wizard_restores_from_a_cloud_repo_with_no_live_cluster(
    context, live_server, kube_console: KubeConsole, kube_ticking, kube_worker, user,  # type: ignore[no-untyped-def]
) -> None:
    """The seed's rhino: hippo is long gone; its backups are in S3. From the Fleet page."""
    page = context.new_page()
    log_in(page)
    assert kube_console.get(NS, "hippo") is None

    page.get_by_role("button", name="Clone / restore…").click()
    expect(page).to_have_url(step_url("source"))
    page.get_by_text("Or: a cloud repo with no live cluster").click()
    cloud = page.locator("#cloud-form")
    cloud.get_by_label("Namespace of the new cluster and of the Secret").select_option(TARGET_NS)
    cloud.get_by_label("Bucket (Azure: container)").fill("my-bucket")
    cloud.get_by_label("S3 endpoint").fill("s3.ca-central-1.amazonaws.com")
    cloud.get_by_label("Repo path of the source").fill("/pgbackrest/postgres-operator/hippo/repo1")
    cloud.get_by_label("Credentials Secret").fill("pgo-s3-creds")
    cloud.get_by_label("PostgreSQL major version of the backups").select_option("16")
    page.locator("#cloud-next").click()
    # The region was left empty: said next to it, and nothing typed is lost.
    expect(page.locator("#cloud-form")).to_contain_text("S3 needs an endpoint and a region.")
    expect(page.locator("#cloud-form").get_by_label("Bucket (Azure: container)")).to_have_value(
        "my-bucket")
    page.locator("#cloud-form").get_by_label("S3 region").fill("ca-central-1")
    page.locator("#cloud-next").click()

    expect(page).to_have_url(step_url("point"))
    expect(page.locator("#cloud-unchecked")).to_be_visible()
    page.get_by_role("button", name="Next: the new cluster").click()
    expect(page).to_have_url(step_url("target"))
    namespace = page.get_by_label("Namespace")
    expect(namespace).to_have_value(TARGET_NS)
    expect(namespace).to_be_disabled()  # the Secret's namespace
    page.get_by_label("New cluster name").fill("rhino")
    page.get_by_role("button", name="Next: review").click()
    expect(page).to_have_url(step_url("review"))

    expect(page.locator("ol.plan")).to_contain_text(
        "PGO restores it from the cloud repo s3://my-bucket/pgbackrest/postgres-operator/"
        "hippo/repo1 (stanza db)")
    shown = yaml.safe_load(page.locator("#manifest").inner_text())
    assert list(shown["spec"]["dataSource"]) == ["pgbackrest"]
    assert shown["spec"]["dataSource"]["pgbackrest"]["configuration"] == [
        {"secret": {"name": "pgo-s3-creds"}}]

    page.get_by_role("button", name="Start the restore").click()
    expect(page).to_have_url(OPERATION_URL)
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=CLONE_TIMEOUT_MS)
    [sent] = [o for o in kube_console.created if o["metadata"]["name"] == "rhino"]
    assert sent["spec"]["dataSource"] == shown["spec"]["dataSource"]  # as reviewed
    now = kube_console.get(TARGET_NS, "rhino")
    assert now is not None and "dataSource" not in now["spec"]
