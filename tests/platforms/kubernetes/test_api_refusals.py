"""KubernetesPlatform against refusals a real API server gives: a field the CRD does not know
(every write is sent with fieldValidation=Strict, so it fails instead of vanishing), and a
pod exec that RBAC refuses (the client reports the refused websocket handshake as status 0;
the platform reads the status from it and fails, naming the missing grant, instead of
retrying a server that "did not answer")."""

from __future__ import annotations

import pytest

from restores.platforms.base import ClusterRef, PermanentError, TransientError
from restores.platforms.kubernetes.api import EXEC_GRANT

NS = "db"
HIPPO = ClusterRef(NS, "hippo")


def test_a_created_manifest_with_an_unknown_field_is_refused_and_nothing_is_made(
        platform, kube_api, kube_server, hippo_manifest):
    body = hippo_manifest(typo=True)
    body["metadata"]["namespace"] = NS
    with pytest.raises(PermanentError) as refused:
        platform.kube.create_cluster(body)
    assert "HTTP 400" in refused.value.message
    assert 'unknown field "spec.typo"' in refused.value.message
    assert kube_api.list_clusters(NS)["items"] == []
    creates = [r for r in kube_server.requests if r.verb == "create"]
    assert creates and all("fieldValidation=Strict" in r.query for r in creates)


def test_a_patch_with_an_unknown_field_is_refused_and_changes_nothing(
        platform, kube_api, kube_server, hippo_manifest, emu):
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()
    before = kube_api.get_cluster(NS, "hippo")
    with pytest.raises(PermanentError) as refused:
        platform.kube.patch_cluster(NS, "hippo", {"spec": {"shutdwn": True}})
    assert 'unknown field "spec.shutdwn"' in refused.value.message
    after = kube_api.get_cluster(NS, "hippo")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "shutdwn" not in after["spec"]
    # A known field still goes through, under the same strict validation.
    platform.kube.patch_cluster(NS, "hippo", {"spec": {"shutdown": True}})
    assert kube_api.get_cluster(NS, "hippo")["spec"]["shutdown"] is True
    patches = [r for r in kube_server.requests if r.verb == "patch"]
    assert len(patches) == 2 and all("fieldValidation=Strict" in r.query for r in patches)


def test_an_exec_refused_by_rbac_fails_at_once_naming_the_missing_grant(
        platform, kube_api, kube_server, hippo_manifest, emu):
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()
    fault = kube_server.faults.forbid(resource="pods/exec", times=5)
    with pytest.raises(PermanentError) as refused:
        platform.repos(HIPPO)
    message = refused.value.message
    assert not isinstance(refused.value, TransientError)
    assert "HTTP 403" in message and "did not answer" not in message
    assert ('is forbidden: User "system:serviceaccount:dr-console:dr-console" cannot create '
            'resource "pods/exec"') in message
    assert EXEC_GRANT.format(namespace=NS) in message
    assert fault.hits == 1  # refused once, not retried


def test_an_exec_to_a_pod_that_is_gone_says_404_and_is_asked_again(
        platform, kube_api, kube_server, hippo_manifest, emu):
    """The leader can move between listing pods and the exec: transient, but said as what
    the server answered, not as a server that did not answer."""
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()
    with pytest.raises(TransientError) as gone:
        platform.kube.exec(NS, "x", "database", ["pgbackrest", "info"])
    assert "HTTP 404" in gone.value.message and "did not answer" not in gone.value.message


def test_a_server_error_in_the_handshake_stays_transient(platform, kube_server, kube_api,
                                                          hippo_manifest, emu):
    kube_api.create_cluster(NS, hippo_manifest())
    emu.settle()
    kube_server.faults.error(503, resource="pods/exec", message="etcd is busy")
    with pytest.raises(TransientError) as failed:
        platform.kube.exec(NS, "x", "database", ["pgbackrest", "info"])
    assert "HTTP 503" in failed.value.message
