"""What a DBA checks on a Kubernetes cluster's page when the state word is not enough: PGO's
conditions and the newest Warning events about it, read by the fleet sync (one list of events
per namespace, whatever the fleet's size) and shown on the cluster page."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from restores.models import Cluster
from restores.platforms.base import WARNINGS_KEPT
from restores.selectors.clusters import cluster_fingerprints
from tests.kube.fixtures import NS, Console

pytestmark = pytest.mark.django_db



def _event(console: Console, cluster: str, reason: str, *, at: str, type: str = "Warning",
           count: int = 1) -> None:
    involved = console.server.store.get("postgresclusters", NS, cluster)
    assert involved is not None
    event = console.server.store.record_event(involved, reason, f"{reason} on {cluster}",
                                              type=type)
    console.server.store.patch("events", NS, event["metadata"]["name"],
                               {"lastTimestamp": at, "count": count})


def test_the_sync_keeps_conditions_and_the_newest_warnings(console: Console, kube_api,
                                                           hippo_manifest,
                                                            admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.create_cluster(NS, hippo_manifest("other"))
    console.emu.settle()
    for n in range(7):  # oldest first
        _event(console, "hippo", f"Warn{n}", at=f"2026-11-25T01:0{n}:00Z", count=n + 1)
    _event(console, "hippo", "Quiet", at="2026-11-25T01:59:00Z", type="Normal")
    _event(console, "other", "Elsewhere", at="2026-11-25T01:58:00Z")

    assert console.sync().errors == []

    row = console.cluster("hippo")
    assert [w["reason"] for w in row.warnings] == ["Warn6", "Warn5", "Warn4", "Warn3", "Warn2"]
    assert len(row.warnings) == WARNINGS_KEPT
    assert row.warnings[0] == {"reason": "Warn6", "message": "Warn6 on hippo",
                               "at": "2026-11-25T01:06:00+00:00", "count": 7}
    assert [w["reason"] for w in console.cluster("other").warnings] == ["Elsewhere"]
    status = console.obj("hippo")["status"]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in row.conditions] == [
        (c["type"], c["status"], c.get("reason", "")) for c in status]
    assert row.conditions, "the emulator's PGO writes conditions"

    page = html.unescape(admin_client.get(row.get_absolute_url()).content.decode())
    assert "Recent warnings" in page
    assert "Warn6</strong>: Warn6 on hippo" in page and "×7" in page
    assert "Warn1" not in page and "Quiet" not in page  # older than the five, and Normal
    assert 'id="cluster-conditions"' in page and status[0]["type"] in page
    assert 'id="cluster-conditions" open' not in page  # ready: folded

    # A sync that finds nothing new leaves the page's status fingerprint as it was.
    before = cluster_fingerprints(Cluster.objects.get(pk=row.pk)).status
    console.sync()
    assert cluster_fingerprints(Cluster.objects.get(pk=row.pk)).status == before
    _event(console, "hippo", "Newer", at="2026-11-25T02:00:00Z")
    console.sync()
    after = Cluster.objects.get(pk=row.pk)
    assert after.warnings[0]["reason"] == "Newer"
    assert cluster_fingerprints(after).status != before


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
