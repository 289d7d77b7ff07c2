"""Fault injection, request accounting and scale, as the real client sees them."""

from __future__ import annotations

import copy
import json
import time

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

NS = "db"


def test_an_injected_500_reaches_the_client_once(kube_api, kube_server, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest())
    kube_server.faults.error(500, verb="get", resource="postgresclusters")
    with pytest.raises(ApiException) as exc:
        kube_api.get_cluster(NS, "hippo")
    assert exc.value.status == 500
    body = json.loads(exc.value.body)
    assert body["reason"] == "InternalError"
    assert body["details"]["causes"][0]["message"] == "injected fault"
    assert kube_api.get_cluster(NS, "hippo")["metadata"]["name"] == "hippo"


def test_injected_conflicts_match_the_method_and_path_and_change_nothing(
    kube_api, kube_server, hippo_manifest
):
    kube_api.create_cluster(NS, hippo_manifest())
    kube_server.faults.error(409, times=2, method="PATCH", path=r"/postgresclusters/hippo$")
    for _ in range(2):
        with pytest.raises(ApiException) as exc:
            kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
        assert exc.value.status == 409
    assert "shutdown" not in kube_api.get_cluster(NS, "hippo")["spec"]
    assert kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})["spec"]["shutdown"]


def test_a_hang_is_a_client_timeout(kube_server, hippo_manifest):
    """The client takes an int or a (connect, read) tuple; a float is silently ignored.
    urllib3 retries a GET that timed out (3 retries), so one hang alone is invisible."""
    api = client.CoreV1Api(kube_server.api_client(retries=False))
    kube_server.faults.hang(3, verb="list", resource="namespaces")
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.list_namespace(_request_timeout=(1, 0.2))
    assert time.monotonic() - started < 1.5

    retrying = client.CoreV1Api(kube_server.api_client())
    kube_server.reset_calls()
    kube_server.faults.hang(3, verb="list", resource="namespaces")
    assert retrying.list_namespace(_request_timeout=(1, 0.2)).items
    assert kube_server.calls[("list", "namespaces")] == 2


def test_a_dropped_connection_is_a_protocol_error_and_a_get_is_retried(kube_api, kube_server):
    kube_server.faults.drop(verb="create", resource="namespaces")
    with pytest.raises(urllib3.exceptions.ProtocolError):  # not an ApiException
        kube_api.core.create_namespace(client.V1Namespace(
            metadata=client.V1ObjectMeta(name="lost")))
    kube_server.faults.drop(verb="list", resource="namespaces")
    assert kube_api.core.list_namespace().items  # a GET is retried by urllib3


def test_calls_are_counted_by_verb_and_resource(kube_api, kube_server, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest())
    kube_server.reset_calls()
    for _ in range(3):
        kube_api.list_clusters()
    kube_api.get_cluster(NS, "hippo")
    kube_api.custom.patch_namespaced_custom_object_status(
        "postgres-operator.crunchydata.com", "v1beta1", NS, "postgresclusters", "hippo",
        {"status": {"postgresVersion": 16}})
    assert dict(kube_server.calls) == {
        ("list", "postgresclusters"): 3,
        ("get", "postgresclusters"): 1,
        ("patch", "postgresclusters/status"): 1,
    }
    assert kube_server.requests[-1].namespace == NS


def test_a_thousand_clusters_list_in_under_two_seconds_and_page_without_loss(
    kube_api, kube_server, hippo_manifest
):
    template = kube_api.create_cluster(NS, hippo_manifest("template"))
    for i in range(1000):
        body = copy.deepcopy(template)
        body["metadata"] = {"name": f"c{i:04}", "namespace": f"ns{i % 10}",
                            "labels": {"shard": str(i % 4)}}
        kube_server.store.put(body)
    kube_server.reset_calls()

    started = time.monotonic()
    everything = kube_api.list_clusters()
    elapsed = time.monotonic() - started
    assert len(everything["items"]) == 1001
    assert elapsed < 2.0, f"listing 1,001 clusters took {elapsed:.2f}s"

    shard = kube_api.list_clusters(label_selector="shard=1")["items"]
    assert len(shard) == 250
    names, token = [], None
    while True:
        page = kube_api.list_clusters(limit=300, _continue=token) if token else \
            kube_api.list_clusters(limit=300)
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert len(names) == 1001 and len(set(names)) == 1001
    assert kube_server.calls[("list", "postgresclusters")] == 2 + 4
