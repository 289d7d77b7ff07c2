"""Direct store access (what the PGO emulator will use), hooks, concurrency, namespaces,
delete preconditions and finalizers, and a few raw wire shapes."""

from __future__ import annotations

import json
import threading

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.kube.apiserver import ApiError, KubeServer
from tests.kube.helpers import NS, error, pod

GROUP = "postgres-operator.crunchydata.com"


def test_store_writes_behave_like_api_writes(kube_api, kube_server, hippo_manifest):
    store = kube_server.store
    created = kube_api.create_cluster(NS, hippo_manifest())
    rv = int(created["metadata"]["resourceVersion"])

    got = store.get("postgresclusters", NS, "hippo")
    got["status"] = {"postgresVersion": 16}  # the store writes status too
    updated = store.update(got)
    assert int(updated["metadata"]["resourceVersion"]) == rv + 1
    assert updated["metadata"]["generation"] == 1
    assert kube_api.get_cluster(NS, "hippo")["status"] == {"postgresVersion": 16}

    with pytest.raises(ApiError) as exc:  # a stale copy conflicts, as over HTTP
        store.update(got)
    assert exc.value.code == 409
    assert store.put(got)["metadata"]["resourceVersion"] == str(rv + 1)  # put: no-op

    with pytest.raises(ApiError) as exc:  # validation only when asked for
        store.create({**hippo_manifest("bad"), "spec": {}}, validate=True)
    assert exc.value.code == 422
    assert store.get("PostgresCluster", NS, "bad") is None

    assert [p["metadata"]["name"] for p in store.list("pods", NS)] == []
    store.put(pod("p1", role="master"))
    store.put(pod("p2", role="replica"))
    assert [p["metadata"]["name"] for p in store.list("pods", label_selector="role=master")] \
        == ["p1"]
    assert store.delete("pods", NS, "p2")["metadata"]["name"] == "p2"
    assert store.delete("pods", NS, "p2") is None


def test_a_hook_can_write_like_a_controller(kube_api, kube_server, hippo_manifest):
    """An emulator-style hook: a new PostgresCluster gets a primary Pod at once."""
    store = kube_server.store

    def controller(kind: str, obj: dict, old: dict | None) -> None:
        if kind == "ADDED" and obj["kind"] == "PostgresCluster":
            name = obj["metadata"]["name"]
            primary = pod(f"{name}-00-abcd-0", obj["metadata"]["namespace"])
            primary["metadata"]["labels"] = {f"{GROUP}/cluster": name,
                                             f"{GROUP}/role": "master"}
            store.put(primary)
            store.record_event(obj, "Created", "created the primary")

    kube_server.on_change.append(controller)
    kube_api.create_cluster(NS, hippo_manifest())
    pods = kube_api.core.list_namespaced_pod(NS, label_selector=f"{GROUP}/cluster=hippo")
    assert [p.metadata.name for p in pods.items] == ["hippo-00-abcd-0"]  # no waiting needed
    events = kube_api.core.list_namespaced_event(NS, field_selector="involvedObject.name=hippo")
    assert [e.reason for e in events.items] == ["Created"]


def test_a_failing_hook_does_not_break_the_request(hippo_manifest):
    server = KubeServer().start()
    try:
        server.on_change.append(lambda *args: 1 / 0)
        api = client.CustomObjectsApi(server.api_client())
        api.create_namespaced_custom_object(GROUP, "v1beta1", NS, "postgresclusters",
                                            hippo_manifest())
        assert [type(e) for e in server.hook_errors] == [ZeroDivisionError] * 2  # ns + cluster
    finally:
        server.stop()


def test_concurrent_patches_are_atomic(kube_api, kube_server, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest())
    start = int(kube_server.store.resource_version)

    def worker(n: int) -> None:
        api = client.CustomObjectsApi(kube_server.api_client())
        for i in range(10):
            api.patch_namespaced_custom_object(
                GROUP, "v1beta1", NS, "postgresclusters", "hippo",
                {"metadata": {"annotations": {f"w{n}-{i}": "x"}}})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    final = kube_api.get_cluster(NS, "hippo")
    assert len(final["metadata"]["annotations"]) == 80
    assert int(final["metadata"]["resourceVersion"]) == start + 80


def test_a_delete_with_a_stale_precondition_conflicts_and_a_current_one_deletes(
    kube_api, hippo_manifest
):
    created = kube_api.create_cluster(NS, hippo_manifest())
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(
        resource_version=created["metadata"]["resourceVersion"]))
    with pytest.raises(ApiException) as exc:
        kube_api.delete_cluster(NS, "hippo", body=stale)
    assert exc.value.status == 409
    assert "Precondition failed: ResourceVersion in precondition" in error(exc)["message"]
    current = client.V1DeleteOptions(preconditions=client.V1Preconditions(
        uid=created["metadata"]["uid"]))
    kube_api.delete_cluster(NS, "hippo", body=current)


def test_a_watch_sees_a_delete_held_by_a_finalizer_as_modified_then_deleted(
    kube_api, hippo_manifest
):
    body = hippo_manifest()
    body["metadata"]["finalizers"] = [f"{GROUP}/finalizer"]
    start = kube_api.list_clusters(NS)["metadata"]["resourceVersion"]
    kube_api.create_cluster(NS, body)
    kube_api.delete_cluster(NS, "hippo")
    kube_api.patch_cluster(NS, "hippo", {"metadata": {"finalizers": []}})
    w = watch.Watch()
    events = []
    for event in w.stream(kube_api.custom.list_namespaced_custom_object, GROUP, "v1beta1", NS,
                          "postgresclusters", resource_version=start, timeout_seconds=5):
        events.append(event)
        if event["type"] == "DELETED":
            w.stop()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["metadata"]["deletionTimestamp"]
    assert events[1]["object"]["metadata"]["generation"] == 2


def test_deleting_a_namespace_deletes_its_objects(kube_api, kube_server, hippo_manifest):
    kube_api.create_cluster("gone", hippo_manifest())
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.core.delete_namespace("gone")
    assert [i["metadata"]["namespace"] for i in kube_api.list_clusters()["items"]] == [NS]

    strict = KubeServer(strict_namespaces=True).start()
    try:
        api = client.CustomObjectsApi(strict.api_client())
        with pytest.raises(ApiException) as exc:
            api.create_namespaced_custom_object(GROUP, "v1beta1", "nowhere",
                                                "postgresclusters", hippo_manifest())
        assert exc.value.status == 404
        assert error(exc)["message"] == 'namespaces "nowhere" not found'
    finally:
        strict.stop()


def test_a_raw_watch_request_streams_one_json_event_per_chunked_line(
    kube_server, kube_api, hippo_manifest
):
    kube_api.create_cluster(NS, hippo_manifest())
    http = urllib3.PoolManager()
    resp = http.request("GET", f"{kube_server.url}/apis/{GROUP}/v1beta1/postgresclusters"
                        "?watch=1&timeoutSeconds=1", preload_content=False)
    assert resp.status == 200
    assert resp.headers["Transfer-Encoding"] == "chunked"
    lines = resp.read().decode().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["ADDED"]
    assert json.loads(lines[0])["object"]["metadata"]["name"] == "hippo"
    assert kube_server.calls[("watch", "postgresclusters")] == 1


def test_an_unknown_path_is_a_not_found_status_and_version_is_served(kube_server):
    http = urllib3.PoolManager()
    resp = http.request("GET", f"{kube_server.url}/apis/example.com/v1/widgets")
    assert resp.status == 404
    assert json.loads(resp.data) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound",
        "details": {}, "code": 404,
    }
    version = json.loads(http.request("GET", f"{kube_server.url}/version").data)
    assert version["major"] == "1"


def test_generate_name_adds_five_characters_and_the_server_stops_on_exit(hippo_manifest):
    with KubeServer() as server:
        api = client.CustomObjectsApi(server.api_client())
        body = hippo_manifest()
        body["metadata"] = {"generateName": "hippo-"}
        created = api.create_namespaced_custom_object(GROUP, "v1beta1", NS, "postgresclusters",
                                                      body)
        assert created["metadata"]["name"].startswith("hippo-")
        assert len(created["metadata"]["name"]) == len("hippo-") + 5
    assert threading.active_count() < 50
