"""The test Kubernetes as fixtures (a plugin of the whole suite, see tests/conftest.py): a test
API server per test, the real `kubernetes` client pointed at it, the PGO emulator, the
platform under test, and the console as a worker process sees it (`console`)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import pytest
from django.utils import timezone

from restores import inventory, platforms
from restores.inventory import SyncResult
from restores.models import Cluster, Operation
from restores.platforms.kubernetes import PERMISSIONS, KubernetesPlatform
from restores.platforms.kubernetes.api import USER_AGENT
from tests.kube.apiserver import PGO_GROUP, PGO_VERSION, KubeServer
from tests.kube.emulator import PgoEmulator
from tests.worker import run_until_done

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
def hippo_manifest() -> Callable[..., dict[str, Any]]:
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


# -- the platform under test (tests/platforms/kubernetes, tests/services) ----------------------

NS = "db"
# An S3 repo for a manifest's spec.backups (a standby's source, a second repo).
S3_REPO = {"name": "repo1",
           "s3": {"bucket": "hippo-backups", "endpoint": "s3.example", "region": "r"}}
# hippo's repo1 in a bucket, where a cloud clone finds it with no live source (the seed's §3.4)
HIPPO_PATH = "/pgbackrest/postgres-operator/hippo/repo1"
ORIGIN = f"s3://my-bucket{HIPPO_PATH} (stanza db)"
GROUPS = {"postgresclusters": "postgres-operator.crunchydata.com", "statefulsets": "apps",
          "deployments": "apps", "jobs": "batch", "cronjobs": "batch"}


class FixedClock:
    """The platform's clock, still until a test moves `now`."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def emu(kube_server: KubeServer) -> PgoEmulator:
    return PgoEmulator(kube_server)


def make_platform(kube_server: KubeServer, clock: FixedClock | None = None,
                  **kw: Any) -> KubernetesPlatform:
    """A KubernetesPlatform on the test server, managing NS, sending the console's
    User-Agent (the RBAC check below recognises its requests by it)."""
    client = kube_server.api_client()
    client.user_agent = USER_AGENT
    kw.setdefault("stuck_after", 60)
    return KubernetesPlatform(namespaces=[NS], api_client=client,
                              **({"clock": clock} if clock else {}), **kw)


@pytest.fixture
def platform(kube_server: KubeServer, emu: PgoEmulator) -> KubernetesPlatform:
    return make_platform(kube_server)


@pytest.fixture(autouse=True)
def rbac_covers_every_request(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that runs the test server: every request the platform sent is one the
    RBAC grants. (The client's exec websocket drops the User-Agent; only the platform execs
    in these tests.)"""
    if "kube_server" not in request.fixturenames:
        yield
        return
    # Asked for here, before the test: the server is then torn down after this check.
    server: KubeServer = request.getfixturevalue("kube_server")
    yield
    for sent in server.requests:
        mine = sent.user_agent == USER_AGENT or sent.resource == "pods/exec"
        if not mine or sent.verb not in (
            "get", "list", "watch", "create", "patch", "update", "delete"
        ):
            continue
        base = sent.resource.split("/")[0]
        verb = "get" if sent.resource == "pods/exec" else sent.verb
        assert any(p.resource == sent.resource and p.api_group == GROUPS.get(base, "")
                   and verb in p.verbs for p in PERMISSIONS), sent


def reachable_time(source: Cluster) -> dt.datetime:
    """The start of the repo's window (one second after the backup's whole-second stop),
    once it has passed."""
    when = source.repositories.get(name="repo1").earliest_recovery
    assert when is not None
    wait = (when - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait + 0.05)
    return when


# -- the console on the test server, for the service tests ------------------------------------


class RunningClock:
    """The platform's clock: real time (the emulator stamps Jobs and backups with it) plus
    an offset a test moves forward to reach a deadline without sleeping."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@dataclasses.dataclass
class Console:
    """The console as a worker process sees it: the platform registry's kubernetes entry is
    a KubernetesPlatform on the test server's ApiClient, built from the DR_KUBE_* settings."""

    server: KubeServer
    emu: PgoEmulator
    clock: RunningClock
    settings: Any
    platform: KubernetesPlatform

    def new_worker(self, **kw: Any) -> KubernetesPlatform:
        """Throw the platform instance away and install a fresh one (a new worker process:
        no cache, no memory of what was sent)."""
        self.platform = console_platform(self.server, self.settings, self.clock, **kw)
        platforms.override("kubernetes", self.platform)
        return self.platform

    def sync(self) -> SyncResult:
        return inventory.platform_sync(platform_name="kubernetes")

    def cluster(self, name: str) -> Cluster:
        return Cluster.objects.get(platform="kubernetes", namespace=NS, name=name)

    def obj(self, name: str) -> dict[str, Any]:
        found = self.server.store.get("postgresclusters", NS, name)
        assert found is not None, f"no PostgresCluster {name} on the server"
        return found

    def run(self, op: Operation, *, limit: int = 60,
            between: Callable[[], None] | None = None) -> Operation:
        """Steps until the operation ends, PGO's time passing (a tick) between two steps."""
        return run_until_done(op, limit, between or self.emu.tick)

    def triggers(self, key: str, cluster: str = "hippo") -> list[str]:
        """Every distinct value PGO saw for a trigger annotation, in order."""
        return [v for name, k, v in self.emu.trigger_values if k == key and name == cluster]

    def patches(self) -> int:
        return self.server.calls[("patch", "postgresclusters")]


def console_platform(server: KubeServer, settings: Any, clock: RunningClock, **kw: Any
                     ) -> KubernetesPlatform:
    client = server.api_client()
    client.user_agent = USER_AGENT
    return KubernetesPlatform(
        namespaces=settings.DR_KUBE_NAMESPACES, api_client=client,
        timeout=kw.pop("timeout", settings.DR_KUBE_TIMEOUT),
        stuck_after=settings.DR_KUBE_STUCK_AFTER, clock=clock, **kw,
    )


@pytest.fixture
def console(settings, kube_server: KubeServer, emu: PgoEmulator) -> Iterator[Console]:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local", "kubernetes"]
    settings.DR_KUBE_NAMESPACES = [NS]
    settings.DR_KUBE_TIMEOUT = 5
    settings.DR_KUBE_STUCK_AFTER = 30
    clock = RunningClock()
    platform = console_platform(kube_server, settings, clock)
    platforms.override("kubernetes", platform)
    try:
        yield Console(kube_server, emu, clock, settings, platform)
    finally:
        platforms.override("kubernetes", None)


@pytest.fixture
def hippo_synced(console: Console, kube_api, hippo_manifest) -> Cluster:  # type: ignore[no-untyped-def]
    """hippo ready on the server (with its first full backup), and in the console's DB."""
    kube_api.create_cluster(NS, hippo_manifest())
    console.emu.settle()
    result = console.sync()
    assert result.errors == []
    return console.cluster("hippo")
