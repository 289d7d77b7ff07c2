"""deploy/: every manifest parses, uses known kinds, grants exactly the RBAC the Kubernetes
platform uses (restores/platforms/kubernetes/rbac.py), each grant explained, and runs hardened
containers whose environment names are settings dr_console/settings.py reads; the watcher
(watch_fleet) runs once, with a heartbeat probe that a healthy watch always passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from restores.management.commands.watch_fleet import Command as WatchFleet
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
PGO = "postgres-operator.crunchydata.com"
# What watch_fleet asks of the API (tests/management/test_watch_fleet.py checks each request it
# sends against PERMISSIONS): the list and watch, a cluster's read on each change, its leader
# pods.
WATCHER_NEEDS = {(PGO, "postgresclusters", "list"), (PGO, "postgresclusters", "watch"),
                 (PGO, "postgresclusters", "get"), ("", "pods", "list")}


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


def deployment(name: str) -> dict[str, Any]:
    [found] = [d for d in of_kind("Deployment") if d["metadata"]["name"] == name]
    return found


def granted() -> set[tuple[str, str, str]]:
    [role] = of_kind("ClusterRole")
    return {(group, resource, verb) for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def watch_fleet_options(command: list[str]) -> dict[str, Any]:
    """The options of a `python manage.py watch_fleet ...` command, as the command parses
    them (an option it does not know fails here)."""
    assert command[:3] == ["python", "manage.py", "watch_fleet"], command
    return vars(WatchFleet().create_parser("manage.py", "watch_fleet").parse_args(command[3:]))


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
    used = {(p.api_group, p.resource, v) for p in PERMISSIONS for v in p.verbs}
    assert granted() == used
    assert not any("secrets" in r for _, r, _ in granted())


def test_the_watcher_may_list_and_watch_in_every_configured_namespace():
    assert WATCHER_NEEDS <= granted()
    [config] = of_kind("ConfigMap")
    namespaces = {n.strip() for n in config["data"]["DR_KUBE_NAMESPACES"].split(",")}
    bound = {b["metadata"]["namespace"] for b in of_kind("RoleBinding")
             if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                 "kind": "ClusterRole", "name": "dr-console-pgo"}}
    assert namespaces <= bound


def test_every_granted_verb_is_explained_above_its_rule():
    """In rbac.yaml, the comment right above each ClusterRole rule says `verb: why` for each
    of its verbs."""
    text = (DEPLOY / "rbac.yaml").read_text()
    role_text = text[text.index("kind: ClusterRole"):]
    role_text = role_text[:role_text.index("\n---")]
    comments, comment = [], []
    for line in role_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        if stripped.startswith("- apiGroups:"):
            comments.append(" ".join(comment))
        comment = []
    [role] = of_kind("ClusterRole")
    for rule, why in zip(role["rules"], comments, strict=True):
        for verb in rule["verbs"]:
            assert re.search(rf"\b{verb}:", why), (rule, why)


def test_the_rbac_has_no_wildcards_and_binds_only_the_consoles_account():
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
        if container["name"] in ("web", "worker", "watcher"):
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


def test_the_watcher_runs_once_like_the_worker():
    watcher, worker = deployment("dr-console-watcher"), deployment("dr-console-worker")
    # One watcher: a second is only wasted watches and writes; Recreate never runs two.
    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["strategy"] == {"type": "Recreate"}
    pod, worker_pod = watcher["spec"]["template"]["spec"], worker["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == worker_pod["serviceAccountName"] == "dr-console"
    [container], [worker_container] = pod["containers"], worker_pod["containers"]
    assert container["image"] == worker_container["image"]
    assert container["envFrom"] == worker_container["envFrom"]
    options = watch_fleet_options(container["command"])
    assert options["seconds"] == 0  # until stopped
    assert options["check_heartbeat"] is None


def test_the_watcher_probes_its_heartbeat_with_room_for_a_healthy_watch():
    [container] = deployment("dr-console-watcher")["spec"]["template"]["spec"]["containers"]
    run = watch_fleet_options(container["command"])
    heartbeat, watch_timeout = run["heartbeat"], run["watch_timeout"]
    assert heartbeat is not None
    # The root filesystem is read-only: the file lives on a mounted volume.
    assert any(heartbeat.is_relative_to(m["mountPath"]) for m in container["volumeMounts"])
    [config] = of_kind("ConfigMap")
    kube_timeout = float(config["data"]["DR_KUBE_TIMEOUT"])
    assert 0 < watch_timeout <= 300  # bounded: each watch is renewed, and beats, that often
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = watch_fleet_options(container[probe]["exec"]["command"])
        assert check["check_heartbeat"] == heartbeat, probe
        # A quiet namespace beats at each renewal (every watch_timeout); a connection that
        # died just after the server's last byte is given up by the client's read timeout
        # (watch_timeout + DR_KUBE_TIMEOUT later) and reopened: the probe leaves both alone.
        assert check["max_age"] >= 2 * watch_timeout + kube_timeout, probe
        assert container[probe]["timeoutSeconds"] >= 5, probe  # a Python process starts
    # Restarted within minutes, not hours, once the heartbeat is stale.
    liveness = container["livenessProbe"]
    assert check["max_age"] + liveness["periodSeconds"] * liveness["failureThreshold"] <= 600
    # The first list of every namespace may take a while before the heartbeat exists.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_the_deployment_turns_the_two_person_rule_and_https_on():
    [config] = of_kind("ConfigMap")
    data = config["data"]
    assert data["DR_TWO_PERSON_RULE"] == "*"
    assert data["SECURE_SSL_REDIRECT"] == "true" and int(data["SECURE_HSTS_SECONDS"]) > 0
    assert data["SECURE_COOKIES"] == "true" and data["SECURE_PROXY_SSL_HEADER"]
