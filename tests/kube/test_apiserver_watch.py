"""Watches through `kubernetes.watch.Watch().stream(...)`, and their wire format."""

from __future__ import annotations

import json
import threading
import time

import pytest
import urllib3
from kubernetes import watch
from kubernetes.client.rest import ApiException

NS = "db"
GROUP = "postgres-operator.crunchydata.com"


def stream(kube_api, **kwargs):
    return watch.Watch().stream(
        kube_api.custom.list_namespaced_custom_object, GROUP, "v1beta1", NS,
        "postgresclusters", **kwargs)


def take(count: int, func, *args, **kwargs) -> list[dict]:
    """The first `count` events of a watch (which then stops), or fewer at its timeout."""
    w = watch.Watch()
    events = []
    for event in w.stream(func, *args, timeout_seconds=5, **kwargs):
        events.append(event)
        if len(events) == count:
            w.stop()
    return events


def take_clusters(kube_api, count: int, **kwargs) -> list[dict]:
    return take(count, kube_api.custom.list_namespaced_custom_object, GROUP, "v1beta1", NS,
                "postgresclusters", **kwargs)


def test_watch_replays_added_modified_deleted_in_order(kube_api, hippo_manifest):
    start = kube_api.list_clusters(NS)["metadata"]["resourceVersion"]
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    kube_api.delete_cluster(NS, "hippo")
    events = [(e["type"], e["object"]) for e in
              take_clusters(kube_api, 3, resource_version=start)]
    assert [t for t, _ in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(o["metadata"]["resourceVersion"]) for _, o in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert events[1][1]["spec"]["shutdown"] is True


def test_watch_follows_live_changes(kube_api, hippo_manifest):
    events: list[tuple[str, str]] = []
    ready = threading.Event()
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(kube_api.custom.list_namespaced_custom_object, GROUP, "v1beta1",
                              NS, "postgresclusters", timeout_seconds=10):
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                w.stop()

    kube_api.create_cluster(NS, hippo_manifest("first"))
    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while not kube_api.server.calls[("watch", "postgresclusters")]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ready.set()
    kube_api.create_cluster(NS, hippo_manifest("second"))
    kube_api.patch_cluster(NS, "second", {"metadata": {"labels": {"a": "b"}}})
    kube_api.delete_cluster(NS, "second")
    thread.join(10)
    assert not thread.is_alive()
    # no resourceVersion: the watch starts with what exists, as synthetic ADDED events
    assert events == [("ADDED", "first"), ("ADDED", "second"), ("MODIFIED", "second"),
                      ("DELETED", "second")]


def test_bookmarks_come_only_when_asked_for_and_carry_the_resource_version(
    kube_api, kube_server, hippo_manifest
):
    kube_server.bookmark_interval = 0.2
    kube_api.create_cluster(NS, hippo_manifest())
    rv = kube_api.list_clusters(NS)["metadata"]["resourceVersion"]
    events = list(stream(kube_api, resource_version=rv, timeout_seconds=1,
                         allow_watch_bookmarks=True))
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 3
    assert bookmarks[0]["object"] == {"kind": "PostgresCluster",
                                      "apiVersion": f"{GROUP}/v1beta1",
                                      "metadata": {"resourceVersion": rv}}
    no_bookmarks = list(stream(kube_api, resource_version=rv, timeout_seconds=1))
    assert no_bookmarks == []


def test_send_initial_events_ends_with_an_annotated_bookmark(kube_api, hippo_manifest):
    for name in ("a", "b"):
        kube_api.server.store.put({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "database", "image": "postgres"}]}})
    # CustomObjectsApi has no send_initial_events parameter; CoreV1Api has
    events = take(3, kube_api.core.list_namespaced_pod, NS, allow_watch_bookmarks=True,
                  send_initial_events=True, resource_version_match="NotOlderThan")
    assert [e["type"] for e in events[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


def test_leaving_and_rejoining_a_label_selector_is_seen_as_deleted_and_added(
    kube_api, hippo_manifest
):
    kube_api.create_cluster(NS, hippo_manifest("x", labels={"tier": "db"}))
    start = kube_api.list_clusters(NS)["metadata"]["resourceVersion"]
    kube_api.patch_cluster(NS, "x", {"metadata": {"labels": {"tier": None}}})
    kube_api.patch_cluster(NS, "x", {"metadata": {"labels": {"tier": "db"}}})
    kube_api.patch_cluster(NS, "x", {"spec": {"shutdown": True}})
    events = take_clusters(kube_api, 3, resource_version=start, label_selector="tier=db")
    assert [e["type"] for e in events] == ["DELETED", "ADDED", "MODIFIED"]


def test_a_too_old_resource_version_is_410_gone(kube_api, kube_server, hippo_manifest):
    kube_server.event_window = 5
    first = kube_api.create_cluster(NS, hippo_manifest("c0"))["metadata"]["resourceVersion"]
    for i in range(1, 10):
        kube_api.create_cluster(NS, hippo_manifest(f"c{i}"))

    # on the wire, as the real server: 200, then one ERROR event carrying a 410 Status
    http = urllib3.PoolManager()
    raw = http.request("GET", f"{kube_server.url}/apis/{GROUP}/v1beta1/namespaces/{NS}/"
                       f"postgresclusters?watch=true&resourceVersion={first}&timeoutSeconds=5")
    assert raw.status == 200
    lines = raw.data.decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert event["object"]["kind"] == "Status"
    assert event["object"]["message"].startswith(f"too old resource version: {first} (")

    # the client turns it into ApiException(410) ...
    with pytest.raises(ApiException) as exc:
        list(stream(kube_api, resource_version=first, timeout_seconds=5))
    assert exc.value.status == 410
    assert exc.value.reason.startswith("Expired: too old resource version")

    # ... and without timeout_seconds it first retries once, from the same version
    kube_server.reset_calls()
    with pytest.raises(ApiException) as exc:
        list(stream(kube_api, resource_version=first))
    assert exc.value.status == 410
    assert kube_server.calls[("watch", "postgresclusters")] == 2

    # a version inside the window still works
    recent = kube_api.list_clusters(NS)["metadata"]["resourceVersion"]
    kube_api.delete_cluster(NS, "c9")
    assert [e["type"] for e in take_clusters(kube_api, 1, resource_version=recent)] == [
        "DELETED"]


def test_a_typed_watch_of_pods_yields_pod_objects_with_their_status(kube_api, kube_server):
    start = kube_server.store.resource_version
    kube_server.store.put({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "hippo-00-abcd-0", "namespace": NS,
                     "labels": {f"{GROUP}/cluster": "hippo"}},
        "spec": {"containers": [{"name": "database", "image": "postgres"}]},
    })
    kube_server.store.patch("pods", NS, "hippo-00-abcd-0", {"status": {"phase": "Running"}})
    kube_server.store.delete("pods", NS, "hippo-00-abcd-0")
    events = take(3, kube_api.core.list_namespaced_pod, NS,
                  label_selector=f"{GROUP}/cluster=hippo", resource_version=start)
    assert [(e["type"], e["object"].status.phase if e["object"].status else None)
            for e in events] == [("ADDED", None), ("MODIFIED", "Running"),
                                 ("DELETED", "Running")]
    assert events[0]["object"].kind == "Pod"


def test_stop_ends_open_watches_quickly(kube_api, kube_server):
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream(kube_api, timeout_seconds=30))
        except Exception as exc:  # the connection may be cut mid-stream
            errors.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while not kube_server.calls[("watch", "postgresclusters")]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    kube_server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
