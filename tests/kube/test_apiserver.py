"""The test API server through the real `kubernetes` client: CRUD, preconditions, patches,
server-side apply, the status subresource, dry runs, validation, pruning, selectors."""

from __future__ import annotations

import re

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kube.helpers import error

NS = "db"
GROUP = "postgres-operator.crunchydata.com"


def test_a_created_cluster_can_be_read_listed_replaced_and_deleted(kube_api, hippo_manifest):
    created, code, _headers = kube_api.custom.create_namespaced_custom_object_with_http_info(
        GROUP, "v1beta1", NS, "postgresclusters", hippo_manifest()
    )
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == NS and meta["generation"] == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit()
    assert meta["managedFields"][0]["manager"] == "OpenAPI-Generator"
    assert created["spec"]["port"] == 5432  # a CRD default, applied as the server does

    got = kube_api.get_cluster(NS, "hippo")
    assert got == created

    listed = kube_api.list_clusters(NS)
    assert listed["kind"] == "PostgresClusterList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["hippo"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])

    got["spec"]["postgresVersion"] = 17
    replaced = kube_api.replace_cluster(NS, "hippo", got)
    assert replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    replaced["metadata"]["labels"] = {"team": "dba"}
    relabelled = kube_api.replace_cluster(NS, "hippo", replaced)
    assert relabelled["metadata"]["generation"] == 2  # metadata only: no new generation

    same = kube_api.replace_cluster(NS, "hippo", relabelled)  # a no-op write
    assert same["metadata"]["resourceVersion"] == relabelled["metadata"]["resourceVersion"]

    deleted = kube_api.delete_cluster(NS, "hippo")
    assert deleted["metadata"]["name"] == "hippo"
    with pytest.raises(ApiException) as exc:
        kube_api.get_cluster(NS, "hippo")
    assert exc.value.status == 404


def test_not_found_is_a_kubernetes_status(kube_api):
    with pytest.raises(ApiException) as exc:
        kube_api.get_cluster(NS, "nope")
    assert exc.value.status == 404
    assert error(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'postgresclusters.{GROUP} "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": GROUP, "kind": "postgresclusters"},
        "code": 404,
    }
    with pytest.raises(ApiException) as exc:
        kube_api.core.read_namespaced_pod("nope", NS)
    assert error(exc)["message"] == 'pods "nope" not found'
    assert error(exc)["details"] == {"name": "nope", "kind": "pods"}


def test_create_twice_is_already_exists(kube_api, hippo_manifest):
    kube_api.create_cluster(NS, hippo_manifest())
    with pytest.raises(ApiException) as exc:
        kube_api.create_cluster(NS, hippo_manifest())
    assert exc.value.status == 409
    assert error(exc)["reason"] == "AlreadyExists"
    assert error(exc)["message"] == f'postgresclusters.{GROUP} "hippo" already exists'


def test_replace_with_a_stale_resource_version_conflicts(kube_api, hippo_manifest):
    first = kube_api.create_cluster(NS, hippo_manifest())
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    first["spec"]["postgresVersion"] = 17
    with pytest.raises(ApiException) as exc:
        kube_api.replace_cluster(NS, "hippo", first)
    assert exc.value.status == 409
    assert error(exc)["reason"] == "Conflict"
    assert "the object has been modified" in error(exc)["message"]

    del first["metadata"]["resourceVersion"]  # custom resources refuse unconditional updates
    with pytest.raises(ApiException) as exc:
        kube_api.replace_cluster(NS, "hippo", first)
    assert exc.value.status == 422
    assert error(exc)["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_status_and_spec_are_written_only_through_their_own_endpoints(kube_api, hippo_manifest):
    body = hippo_manifest()
    body["status"] = {"postgresVersion": 16}
    created = kube_api.create_cluster(NS, body)
    assert "status" not in created  # dropped on create

    status = {"status": {"postgresVersion": 16, "conditions": [{
        "type": "PGBackRestReplicaRepoReady", "status": "True", "reason": "StanzaCreated",
        "message": "pgBackRest replica create repo is ready for backups",
        "lastTransitionTime": "2026-11-24T10:00:00Z", "observedGeneration": 1}]},
        "spec": {"postgresVersion": 99}}
    after = kube_api.custom.patch_namespaced_custom_object_status(
        GROUP, "v1beta1", NS, "postgresclusters", "hippo", status)
    assert after["status"]["conditions"][0]["reason"] == "StanzaCreated"
    assert after["spec"]["postgresVersion"] == 16  # the spec part of a status write: ignored
    assert after["metadata"]["generation"] == 1
    assert int(after["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    after["status"] = {"postgresVersion": 15}
    after["spec"]["shutdown"] = True
    replaced = kube_api.replace_cluster(NS, "hippo", after)
    assert replaced["spec"]["shutdown"] is True
    assert replaced["status"]["postgresVersion"] == 16  # the status part of a main write

    merged = kube_api.patch_cluster(NS, "hippo", {"status": {"postgresVersion": 1}})
    assert merged["status"]["postgresVersion"] == 16

    with pytest.raises(ApiException) as exc:  # status is validated against the schema too
        kube_api.custom.patch_namespaced_custom_object_status(
            GROUP, "v1beta1", NS, "postgresclusters", "hippo",
            {"status": {"conditions": [{"type": "Broken"}]}})
    assert exc.value.status == 422
    fields = {c["field"] for c in error(exc)["details"]["causes"]}
    assert "status.conditions[0].lastTransitionTime" in fields


def test_dry_run_persists_nothing(kube_api, kube_server, hippo_manifest):
    rv = kube_server.store.resource_version
    dry, code, _ = kube_api.custom.create_namespaced_custom_object_with_http_info(
        GROUP, "v1beta1", NS, "postgresclusters", hippo_manifest(), dry_run="All")
    assert code == 201 and dry["metadata"]["uid"]
    assert "resourceVersion" not in dry["metadata"]
    assert kube_server.store.resource_version == rv
    assert kube_api.list_clusters(NS)["items"] == []

    created = kube_api.create_cluster(NS, hippo_manifest())
    rv = kube_server.store.resource_version
    patched = kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}}, dry_run="All")
    assert patched["spec"]["shutdown"] is True
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    kube_api.delete_cluster(NS, "hippo", dry_run="All")
    assert kube_server.store.resource_version == rv
    assert "shutdown" not in kube_api.get_cluster(NS, "hippo")["spec"]

    with pytest.raises(ApiException) as exc:  # a dry run is validated like the real thing
        kube_api.patch_cluster(NS, "hippo", {"spec": {"postgresVersion": 9}}, dry_run="All")
    assert exc.value.status == 422


def test_invalid_manifest_is_422_with_causes(kube_api, hippo_manifest):
    body = hippo_manifest(postgresVersion="sixteen")
    del body["spec"]["instances"]
    with pytest.raises(ApiException) as exc:
        kube_api.create_cluster(NS, body)
    assert exc.value.status == 422
    status = error(exc)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(f'PostgresCluster.{GROUP} "hippo" is invalid: [')
    assert status["details"]["kind"] == "PostgresCluster"
    assert status["details"]["group"] == GROUP
    causes = {c["field"]: c for c in status["details"]["causes"]}
    assert causes["spec.instances"]["reason"] == "FieldValueRequired"
    assert causes["spec.postgresVersion"]["reason"] == "FieldValueTypeInvalid"
    assert causes["spec.postgresVersion"]["message"].startswith('Invalid value: "sixteen"')
    assert kube_api.list_clusters(NS)["items"] == []


def test_crd_rules_are_enforced(kube_api, hippo_manifest):
    no_backups = hippo_manifest()
    del no_backups["spec"]["backups"]  # optional in PGO 5.8
    kube_api.create_cluster(NS, no_backups)

    repo5 = hippo_manifest("repo5")
    repo5["spec"]["backups"]["pgbackrest"]["repos"][0]["name"] = "repo5"
    with pytest.raises(ApiException) as exc:
        kube_api.create_cluster(NS, repo5)
    assert exc.value.status == 422
    assert error(exc)["details"]["causes"][0]["field"].startswith(
        "spec.backups.pgbackrest.repos[0].name")

    volume_source = hippo_manifest("cloud", dataSource={"pgbackrest": {
        "stanza": "db", "configuration": [{"secret": {"name": "s3-creds"}}],
        "repo": {"name": "repo1", "volume": {"volumeClaimSpec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}},
    }})
    with pytest.raises(ApiException) as exc:
        kube_api.create_cluster(NS, volume_source)
    assert exc.value.status == 422
    assert "Only S3, GCS or Azure repos" in error(exc)["message"]


def test_unknown_fields_are_pruned_with_a_warning(kube_api, hippo_manifest):
    body = hippo_manifest(typo=True)
    body["spec"]["instances"][0]["replicaz"] = 2
    created, _, headers = kube_api.custom.create_namespaced_custom_object_with_http_info(
        GROUP, "v1beta1", NS, "postgresclusters", body)
    assert "typo" not in created["spec"]
    assert "replicaz" not in created["spec"]["instances"][0]
    assert "typo" not in kube_api.get_cluster(NS, "hippo")["spec"]
    assert 'unknown field \\"spec.typo\\"' in headers["Warning"]

    with pytest.raises(ApiException) as exc:
        kube_api.create_cluster(NS, hippo_manifest("strict", typo=True), field_validation="Strict")
    assert exc.value.status == 400
    assert 'unknown field "spec.typo"' in error(exc)["message"]


def test_label_selectors_match_equality_set_and_existence_terms(kube_api, hippo_manifest):
    for name, labels in [
        ("a", {"env": "prod", "tier": "db", "team": "x"}),
        ("b", {"env": "prod", "tier": "cache", "team": "y"}),
        ("c", {"env": "dev", "tier": "db", "team": "x", "legacy": "true"}),
        ("d", {"env": "prod", "team": "z"}),
    ]:
        kube_api.create_cluster(NS, hippo_manifest(name, labels=labels))

    def names(selector: str) -> list[str]:
        items = kube_api.list_clusters(NS, label_selector=selector)["items"]
        return [i["metadata"]["name"] for i in items]

    assert names("env=prod") == ["a", "b", "d"]
    assert names("env==prod,tier!=cache") == ["a", "d"]
    assert names("team in (x, y),!legacy") == ["a", "b"]
    assert names("team notin (x),tier") == ["b"]
    assert names("env=prod,tier!=db,team in (y,z),!legacy,team") == ["b", "d"]
    assert names("") == ["a", "b", "c", "d"]
    with pytest.raises(ApiException) as exc:
        names("env in prod")
    assert exc.value.status == 400


def test_a_cluster_wide_list_spans_namespaces_and_field_selectors_filter_it(
    kube_api, hippo_manifest
):
    kube_api.create_cluster("one", hippo_manifest("hippo"))
    kube_api.create_cluster("two", hippo_manifest("hippo"))
    kube_api.create_cluster("two", hippo_manifest("rhino"))
    everywhere = kube_api.list_clusters()
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("one", "hippo"), ("two", "hippo"), ("two", "rhino")]
    named = kube_api.list_clusters(field_selector="metadata.name=hippo")
    assert len(named["items"]) == 2
    one = kube_api.list_clusters(field_selector="metadata.namespace=two,metadata.name!=hippo")
    assert [i["metadata"]["name"] for i in one["items"]] == ["rhino"]
    with pytest.raises(ApiException) as exc:
        kube_api.list_clusters(field_selector="spec.postgresVersion=16")
    assert exc.value.status == 400
    assert "field label not supported" in error(exc)["message"]


def test_a_paged_list_returns_every_item_once_in_order(kube_api, hippo_manifest):
    for i in range(5):
        kube_api.create_cluster(NS, hippo_manifest(f"c{i}"))
    page = kube_api.list_clusters(NS, limit=2)
    seen = [i["metadata"]["name"] for i in page["items"]]
    assert page["metadata"]["remainingItemCount"] == 3
    while page["metadata"].get("continue"):
        page = kube_api.list_clusters(NS, limit=2, _continue=page["metadata"]["continue"])
        seen += [i["metadata"]["name"] for i in page["items"]]
    assert seen == ["c0", "c1", "c2", "c3", "c4"]


def test_finalizers_hold_a_delete(kube_api, hippo_manifest):
    body = hippo_manifest()
    body["metadata"]["finalizers"] = [f"{GROUP}/finalizer"]
    kube_api.create_cluster(NS, body)
    deleting = kube_api.delete_cluster(NS, "hippo")
    assert deleting["metadata"]["deletionTimestamp"]
    assert kube_api.get_cluster(NS, "hippo")["metadata"]["deletionTimestamp"]
    kube_api.patch_cluster(NS, "hippo", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        kube_api.get_cluster(NS, "hippo")
    assert exc.value.status == 404


def test_core_apps_and_batch_kinds_are_served_like_the_real_api(kube_api, kube_server):
    namespaces = [n.metadata.name for n in kube_api.core.list_namespace().items]
    assert {"default", "kube-system"} <= set(namespaces)

    kube_server.store.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                           "metadata": {"name": "hippo-pguser-hippo", "namespace": NS},
                           "data": {"password": "c2VjcmV0"}})
    secret = kube_api.core.read_namespaced_secret("hippo-pguser-hippo", NS)
    assert secret.data == {"password": "c2VjcmV0"}
    assert NS in [n.metadata.name for n in kube_api.core.list_namespace().items]

    label = f"{GROUP}/cluster=hippo"
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="hippo-00-abcd", labels={f"{GROUP}/cluster": "hippo",
                                                                   f"{GROUP}/instance": "x"}),
        spec=client.V1StatefulSetSpec(
            replicas=1, service_name="hippo-pods",
            selector=client.V1LabelSelector(match_labels={"a": "b"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"a": "b"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="database")]))))
    kube_api.apps.create_namespaced_stateful_set(NS, sts)
    scaled = kube_api.apps.patch_namespaced_stateful_set("hippo-00-abcd", NS,
                                                         {"spec": {"replicas": 0}})
    assert scaled.spec.replicas == 0 and scaled.metadata.generation == 2
    listed = kube_api.apps.list_namespaced_stateful_set(NS, label_selector=f"{label},"
                                                        f"{GROUP}/instance")
    assert [s.metadata.name for s in listed.items] == ["hippo-00-abcd"]
    assert listed.items[0].kind is None  # items of built-in lists carry no kind

    kube_server.store.put({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "hippo-pgbouncer", "namespace": NS},
                           "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                                    "template": {"spec": {"containers": [{"name": "p"}]}}}})
    assert kube_api.apps.read_namespaced_deployment("hippo-pgbouncer", NS).spec.replicas == 1

    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "hippo-backup-x1y2", "labels": {f"{GROUP}/cluster": "hippo"}},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "pgbackrest"}]}}}}
    kube_api.batch.create_namespaced_job(NS, job)
    jobs = kube_api.batch.list_namespaced_job(NS, label_selector=label)
    assert [j.metadata.name for j in jobs.items] == ["hippo-backup-x1y2"]
    done = kube_api.batch.patch_namespaced_job_status(
        "hippo-backup-x1y2", NS, {"status": {"succeeded": 1}})
    assert done.status.succeeded == 1
    cron = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hippo-repo1-full"},
            "spec": {"schedule": "0 1 * * *", "suspend": False,
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "containers": [{"name": "pgbackrest"}]}}}}}}
    kube_api.batch.create_namespaced_cron_job(NS, cron)
    assert kube_api.batch.read_namespaced_cron_job("hippo-repo1-full", NS).spec.suspend is False
    status = kube_api.batch.delete_namespaced_cron_job("hippo-repo1-full", NS)
    assert status.status == "Success"  # built-in kinds answer a delete with a Status

    with pytest.raises(ApiException) as exc:
        kube_api.core.create_namespaced_pod(NS, {"metadata": {"name": "Bad_Name"},
                                                 "spec": {"containers": []}})
    assert exc.value.status == 422
    fields = {c["field"] for c in error(exc)["details"]["causes"]}
    assert fields == {"metadata.name", "spec.containers"}


def test_events_can_be_listed_by_involved_object_and_by_type(kube_api, kube_server, hippo_manifest):
    cluster = kube_api.create_cluster(NS, hippo_manifest())
    kube_server.store.record_event(cluster, "StanzasCreated", "pgBackRest stanza created")
    kube_server.store.record_event(cluster, "InvalidBackupRepo", "repo9 is not defined",
                                   type="Warning")
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="other.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name="hippo", namespace=NS),
        reason="Started", message="started", type="Normal")
    kube_api.core.create_namespaced_event(NS, event)

    found = kube_api.core.list_namespaced_event(
        NS, field_selector="involvedObject.kind=PostgresCluster,involvedObject.name=hippo")
    assert [e.reason for e in found.items] == ["StanzasCreated", "InvalidBackupRepo"] or [
        e.reason for e in found.items] == ["InvalidBackupRepo", "StanzasCreated"]
    assert {e.source.component for e in found.items} == {"postgrescluster-controller"}
    warnings = kube_api.core.list_namespaced_event(NS, field_selector="type=Warning")
    assert [e.reason for e in warnings.items] == ["InvalidBackupRepo"]
    assert len(kube_api.core.list_event_for_all_namespaces().items) == 3


def test_discovery_lists_the_postgres_operator_group_and_core_resources(kube_api):
    groups = kube_api.client.call_api("/apis", "GET", response_type="object",
                                      _return_http_data_only=True)
    assert GROUP in [g["name"] for g in groups["groups"]]
    resources = client.CoreV1Api(kube_api.client).get_api_resources()
    names = {r.name for r in resources.resources}
    assert {"pods", "pods/exec", "events", "secrets", "namespaces"} <= names
    crs = client.CustomObjectsApi(kube_api.client).get_api_resources(GROUP, "v1beta1")
    assert [r.name for r in crs.resources] == ["postgresclusters", "postgresclusters/status"]


def test_on_change_hooks_see_every_real_change_but_no_op_writes(
    kube_api, kube_server, hippo_manifest
):
    seen = []
    kube_server.on_change.append(lambda kind, obj, old: seen.append(
        (kind, obj["kind"], obj["metadata"]["name"], old is None)))
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    kube_api.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})  # a no-op: no change
    kube_server.store.patch("postgresclusters", NS, "hippo", {"status": {"postgresVersion": 16}})
    kube_api.delete_cluster(NS, "hippo")
    assert seen == [
        ("ADDED", "Namespace", NS, True),
        ("ADDED", "PostgresCluster", "hippo", True),
        ("MODIFIED", "PostgresCluster", "hippo", False),
        ("MODIFIED", "PostgresCluster", "hippo", False),
        ("DELETED", "PostgresCluster", "hippo", False),
    ]


def test_a_collection_delete_follows_its_selector_and_a_future_version_is_504(
    kube_api, hippo_manifest
):
    for name, tier in (("a", "db"), ("b", "db"), ("c", "cache")):
        kube_api.create_cluster(NS, hippo_manifest(name, labels={"tier": tier}))
    gone = kube_api.custom.delete_collection_namespaced_custom_object(
        GROUP, "v1beta1", NS, "postgresclusters", label_selector="tier=db")
    assert [i["metadata"]["name"] for i in gone["items"]] == ["a", "b"]
    remaining = kube_api.list_clusters(NS)
    assert [i["metadata"]["name"] for i in remaining["items"]] == ["c"]

    future = str(int(remaining["metadata"]["resourceVersion"]) + 100)
    with pytest.raises(ApiException) as exc:
        kube_api.list_clusters(NS, resource_version=future)
    assert exc.value.status == 504
    assert error(exc)["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
