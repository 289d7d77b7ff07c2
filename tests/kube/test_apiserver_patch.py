"""Patches through the real client: merge, JSON, strategic merge, server-side apply."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.kube.helpers import error, pod

NS = "db"
GROUP = "postgres-operator.crunchydata.com"


def test_patch_carrying_a_stale_resource_version_conflicts(kube_api, hippo_manifest):
    created = kube_api.create_cluster(NS, hippo_manifest())
    kube_api.patch_cluster(NS, "hippo", {"metadata": {"annotations": {"a": "1"}}})
    with pytest.raises(ApiException) as exc:
        kube_api.patch_cluster(NS, "hippo", {
            "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
            "spec": {"shutdown": True},
        })
    assert exc.value.status == 409


def test_a_merge_patch_removes_nulls_merges_maps_and_bumps_the_generation(kube_api, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest(labels={"keep": "me", "drop": "me"}))
    patched = kube_api.patch_cluster(NS, "hippo", {
        "metadata": {"labels": {"drop": None},
                     "annotations": {f"{GROUP}/pgbackrest-backup": "op-1"}},
        "spec": {"backups": {"pgbackrest": {"manual": {"repoName": "repo1"}}}},
    })
    assert patched["metadata"]["labels"] == {"keep": "me"}
    assert patched["metadata"]["annotations"] == {f"{GROUP}/pgbackrest-backup": "op-1"}
    assert patched["spec"]["backups"]["pgbackrest"]["manual"]["repoName"] == "repo1"
    assert patched["spec"]["backups"]["pgbackrest"]["repos"][0]["name"] == "repo1"
    assert patched["metadata"]["generation"] == 2
    assert kube_api.server.requests[-1].content_type == "application/merge-patch+json"


def json_patch_api(kube_server) -> client.CustomObjectsApi:
    """CustomObjectsApi only sends merge patches; a default header overrides the type."""
    api_client = kube_server.api_client()
    api_client.set_default_header("Content-Type", "application/json-patch+json")
    return client.CustomObjectsApi(api_client)


def test_a_json_patch_applies_in_order_and_a_failed_test_op_changes_nothing(
    kube_api, kube_server, hippo_manifest
):
    kube_api.create_cluster(NS, hippo_manifest())
    api = json_patch_api(kube_server)
    args = (GROUP, "v1beta1", NS, "postgresclusters", "hippo")
    patched = api.patch_namespaced_custom_object(*args, [
        {"op": "test", "path": "/spec/postgresVersion", "value": 16},
        {"op": "replace", "path": "/spec/postgresVersion", "value": 17},
        {"op": "add", "path": "/metadata/annotations", "value": {"x/y": "z"}},
        {"op": "add", "path": "/spec/instances/-", "value": {
            "name": "01", "dataVolumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}}}}},
    ])
    assert patched["spec"]["postgresVersion"] == 17
    assert [i["name"] for i in patched["spec"]["instances"]] == ["00", "01"]
    assert patched["spec"]["instances"][1]["replicas"] == 1  # defaulted
    assert kube_server.requests[-1].content_type == "application/json-patch+json"

    with pytest.raises(ApiException) as exc:  # a failing test op changes nothing
        api.patch_namespaced_custom_object(*args, [
            {"op": "test", "path": "/spec/postgresVersion", "value": 16},
            {"op": "replace", "path": "/spec/postgresVersion", "value": 15},
        ])
    assert exc.value.status == 422
    assert error(exc)["reason"] == "Invalid"
    assert error(exc)["details"]["causes"][0]["reason"] == "UnexpectedServerResponse"
    assert "testing value /spec/postgresVersion failed" in error(exc)["details"]["causes"][0][
        "message"]
    assert kube_api.get_cluster(NS, "hippo")["spec"]["postgresVersion"] == 17

    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(*args, [{"op": "remove", "path": "/spec/nothing"}])
    assert exc.value.status == 422
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(*args, [{"op": "bogus", "path": "/spec"}])
    assert exc.value.status == 400

    # the default header also reaches creates, which the client then sends as a strategic
    # merge patch: keep such an ApiClient for JSON patches only
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_custom_object(GROUP, "v1beta1", NS, "postgresclusters",
                                            hippo_manifest("other"))
    assert exc.value.status == 415


def test_json_patch_result_is_validated(kube_api, kube_server, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest())
    with pytest.raises(ApiException) as exc:
        json_patch_api(kube_server).patch_namespaced_custom_object(
            GROUP, "v1beta1", NS, "postgresclusters", "hippo",
            [{"op": "remove", "path": "/spec/instances"}])
    assert exc.value.status == 422
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.instances"} in error(exc)["details"]["causes"]


def test_pods_take_strategic_merge_patches_and_custom_resources_refuse_them(
    kube_api, kube_server, hippo_manifest
):
    """The typed client sends strategic merge patches for dicts (a list body: JSON patch);
    a custom resource refuses them with 415, as the dynamic client's default patch finds."""
    kube_server.store.put(pod("p1"))
    patched = kube_api.core.patch_namespaced_pod("p1", NS, {"metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.labels == {"a": "b"}
    assert kube_server.requests[-1].content_type == "application/strategic-merge-patch+json"
    patched = kube_api.core.patch_namespaced_pod(
        "p1", NS, [{"op": "add", "path": "/metadata/labels/c", "value": "d"}])
    assert patched.metadata.labels == {"a": "b", "c": "d"}

    kube_api.create_cluster(NS, hippo_manifest())
    dyn = dynamic.DynamicClient(kube_api.client, cache_file=None)
    resource = dyn.resources.get(api_version=f"{GROUP}/v1beta1", kind="PostgresCluster")
    with pytest.raises(dynamic.exceptions.DynamicApiError) as exc:
        dyn.patch(resource, body={"spec": {"shutdown": True}}, name="hippo", namespace=NS)
    assert exc.value.status == 415
    merged = dyn.patch(resource, body={"spec": {"shutdown": True}}, name="hippo", namespace=NS,
                       content_type="application/merge-patch+json")
    assert merged.spec.shutdown is True


def test_server_side_apply_needs_a_manager_and_conflicts_unless_forced(
    kube_api, kube_server, hippo_manifest
):
    dyn = dynamic.DynamicClient(kube_api.client, cache_file=None)
    resource = dyn.resources.get(api_version=f"{GROUP}/v1beta1", kind="PostgresCluster")
    body = hippo_manifest()
    body["metadata"]["namespace"] = NS

    with pytest.raises(dynamic.exceptions.DynamicApiError) as exc:
        dyn.server_side_apply(resource, body=body)  # no field manager
    assert exc.value.status == 422
    status = json.loads(exc.value.body)
    assert status["details"]["causes"][0]["field"] == "fieldManager"
    assert status["details"]["kind"] == "PatchOptions"

    created = dyn.server_side_apply(resource, body=body, field_manager="dr-console")
    assert created.metadata.managedFields[0].manager == "dr-console"
    assert created.metadata.managedFields[0].operation == "Apply"

    # another manager setting a field dr-console owns, to a different value: a conflict
    other = {"apiVersion": body["apiVersion"], "kind": "PostgresCluster",
             "metadata": {"name": "hippo", "namespace": NS}, "spec": {"postgresVersion": 17}}
    with pytest.raises(dynamic.exceptions.DynamicApiError) as exc:
        dyn.server_side_apply(resource, body=other, field_manager="kubectl-pgo")
    assert exc.value.status == 409
    status = json.loads(exc.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict",
        "message": f'conflict with "dr-console" using {GROUP}/v1beta1',
        "field": ".spec.postgresVersion",
    }]
    forced = dyn.server_side_apply(resource, body=other, field_manager="kubectl-pgo",
                                   force_conflicts=True)
    assert forced.spec.postgresVersion == 17
    managers = {e["manager"]: e["fieldsV1"]
                for e in forced.to_dict()["metadata"]["managedFields"]}
    assert "f:postgresVersion" in managers["kubectl-pgo"]["f:spec"]
    assert "f:postgresVersion" not in managers["dr-console"]["f:spec"]

    # applying without a field this manager owned removes it
    shutdown = {**other, "spec": {"postgresVersion": 17, "shutdown": True}}
    assert dyn.server_side_apply(resource, body=shutdown, field_manager="kubectl-pgo",
                                 ).spec.shutdown is True
    again = dyn.server_side_apply(resource, body=other, field_manager="kubectl-pgo")
    assert "shutdown" not in again.spec

    # the typed client can apply too, with a default Content-Type header; an applied
    # configuration is the whole intent of its manager: what it leaves out goes
    kube_api.client.set_default_header("Content-Type", "application/apply-patch+yaml")
    full = hippo_manifest(labels={"team": "dba"}, postgresVersion=17)
    applied = kube_api.patch_cluster(NS, "hippo", full, field_manager="dr-console")
    assert applied["metadata"]["labels"] == {"team": "dba"}
    with pytest.raises(ApiException) as exc:
        kube_api.patch_cluster(NS, "hippo", {**full, "spec": {"postgresVersion": 17}},
                               field_manager="dr-console")
    assert exc.value.status == 422  # dropping instances (owned by dr-console alone)
    assert error(exc)["details"]["causes"][0]["field"] == "spec.instances"
