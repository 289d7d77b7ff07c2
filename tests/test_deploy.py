"""deploy/: every manifest parses, uses known kinds, grants exactly the RBAC the Kubernetes
platform uses (restores/platforms/kubernetes/rbac.py), and runs hardened containers whose
environment names are settings dr_console/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from restores.platforms.kubernetes import PERMISSIONS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KNOWN = {
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"),
    ("v1", "Service"), ("apps/v1", "Deployment"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}
SETTINGS = (ROOT / "dr_console" / "settings.py").read_text()


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append(doc)
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind]


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], c) for d in of_kind("Deployment")
            for key in ("initContainers", "containers")
            for c in d["spec"]["template"]["spec"].get(key) or ()]


def test_it_parses_every_manifest_with_known_kinds():
    docs = documents()
    assert {(d["apiVersion"], d["kind"]) for d in docs} <= KNOWN
    assert {d["kind"] for d in docs} >= {"Namespace", "ConfigMap", "Secret", "ServiceAccount",
                                         "Service", "Deployment", "ClusterRole", "RoleBinding"}
    for doc in docs:
        assert doc["metadata"]["name"]
        if doc["kind"] not in ("Namespace", "ClusterRole"):
            assert doc["metadata"].get("namespace"), doc["metadata"]["name"]


def test_the_rbac_grants_exactly_what_the_platform_uses():
    [role] = of_kind("ClusterRole")
    granted = {(group, resource, verb) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    used = {(p.api_group, p.resource, v) for p in PERMISSIONS for v in p.verbs}
    assert granted == used
    assert not any("secrets" in r for _, r, _ in granted)


def test_no_wildcards_anywhere_in_rbac():
    for role in of_kind("ClusterRole"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
    for binding in of_kind("RoleBinding"):
        assert binding["roleRef"]["name"] == "dr-console-pgo"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dr-console",
                                        "namespace": "dr-console"}]


@pytest.mark.parametrize("name,container", containers(), ids=lambda v: str(v)[:40])
def test_containers_are_bounded_and_hardened(name, container):
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert set(resources[part]) == {"cpu", "memory"}, (name, part)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]


def test_long_running_containers_have_probes():
    for name, container in containers():
        if container["name"] in ("web", "worker"):
            assert "readinessProbe" in container and "livenessProbe" in container, name
    for deployment in of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["serviceAccountName"] == "dr-console"


def test_environment_names_are_settings_the_console_reads():
    names = set()
    for config in of_kind("ConfigMap"):
        names |= set(config["data"])
    for secret in of_kind("Secret"):
        names |= set(secret.get("stringData") or {}) | set(secret.get("data") or {})
        assert set((secret.get("stringData") or {}).values()) == {"CHANGE-ME"}
    for _, container in containers():
        names |= {e["name"] for e in container.get("env") or ()}
    read = set(re.findall(r'\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS))
    assert names - read == set()
    assert {"DR_KUBE_IN_CLUSTER", "DR_KUBE_NAMESPACES", "DR_KUBE_TIMEOUT",
            "DR_KUBE_STUCK_AFTER", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= names


def test_env_comes_from_the_configmap_and_secret_that_exist():
    configs = {d["metadata"]["name"] for d in of_kind("ConfigMap")}
    secrets = {d["metadata"]["name"] for d in of_kind("Secret")}
    for name, container in containers():
        refs = container.get("envFrom") or ()
        assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} <= configs
        assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} <= secrets, name
