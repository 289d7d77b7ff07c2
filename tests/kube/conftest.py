"""Fixtures: a test API server per test, and the real `kubernetes` client pointed at it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import pytest

from tests.kube.apiserver import PGO_GROUP, PGO_VERSION, KubeServer

HIPPO: dict[str, Any] = {
    "apiVersion": f"{PGO_GROUP}/{PGO_VERSION}",
    "kind": "PostgresCluster",
    "metadata": {"name": "hippo"},
    "spec": {
        "postgresVersion": 16,
        "instances": [{
            "name": "00",
            "dataVolumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }],
        "backups": {"pgbackrest": {"repos": [{
            "name": "repo1",
            "volume": {"volumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            }},
        }]}},
    },
}


@pytest.fixture
def kube_server() -> Iterator[KubeServer]:
    """A running test API server; stopped (and its connections closed) after the test."""
    server = KubeServer().start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.hook_errors, f"on_change hooks failed: {server.hook_errors!r}"


@dataclass
class KubeApi:
    """The real client's API objects, all on one ApiClient configured for the test server."""

    server: KubeServer
    client: kubernetes.client.ApiClient
    custom: kubernetes.client.CustomObjectsApi
    core: kubernetes.client.CoreV1Api
    apps: kubernetes.client.AppsV1Api
    batch: kubernetes.client.BatchV1Api

    group = PGO_GROUP
    version = PGO_VERSION
    plural = "postgresclusters"

    # PostgresCluster shorthands (CustomObjectsApi's long argument lists)
    def create_cluster(self, namespace: str, body: dict[str, Any], **kw: Any) -> dict:
        return self.custom.create_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, body, **kw)

    def get_cluster(self, namespace: str, name: str, **kw: Any) -> dict:
        return self.custom.get_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, name, **kw)

    def list_clusters(self, namespace: str | None = None, **kw: Any) -> dict:
        if namespace is None:
            return self.custom.list_cluster_custom_object(
                self.group, self.version, self.plural, **kw)
        return self.custom.list_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, **kw)

    def replace_cluster(self, namespace: str, name: str, body: dict, **kw: Any) -> dict:
        return self.custom.replace_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, name, body, **kw)

    def patch_cluster(self, namespace: str, name: str, body: Any, **kw: Any) -> dict:
        """A merge patch: CustomObjectsApi always sends application/merge-patch+json."""
        return self.custom.patch_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, name, body, **kw)

    def delete_cluster(self, namespace: str, name: str, **kw: Any) -> dict:
        return self.custom.delete_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, name, **kw)


@pytest.fixture
def kube_api(kube_server: KubeServer) -> Iterator[KubeApi]:
    api_client = kube_server.api_client()
    try:
        yield KubeApi(
            server=kube_server,
            client=api_client,
            custom=kubernetes.client.CustomObjectsApi(api_client),
            core=kubernetes.client.CoreV1Api(api_client),
            apps=kubernetes.client.AppsV1Api(api_client),
            batch=kubernetes.client.BatchV1Api(api_client),
        )
    finally:
        api_client.close()


@pytest.fixture
def hippo() -> Callable[..., dict[str, Any]]:
    """A valid PostgresCluster manifest: hippo(name="hippo", labels=None, **spec_changes)."""

    def make(name: str = "hippo", labels: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
        body = copy.deepcopy(HIPPO)
        body["metadata"]["name"] = name
        if labels:
            body["metadata"]["labels"] = dict(labels)
        body["spec"].update(spec)
        return body

    return make
