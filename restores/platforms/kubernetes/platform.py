"""KubernetesPlatform: PostgresClusters run by Crunchy Data's PGO v5, through the API."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import kubernetes.client

from ..base import ClusterRef, ClusterStatus, Platform
from . import state
from .api import Kube, load_client
from .backups import BackupsMixin
from .clones import ClonesMixin
from .drills import DrillsMixin
from .lifecycle import LifecycleMixin


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# A fleet sync of 1,000 clusters takes ~20 s (mostly the database); what clusters() listed
# stays good for its whole length. A leader that moved since costs one failed exec, which is
# a transient error the next sync corrects.
LISTED_FRESH_SECONDS = 120.0


class KubernetesPlatform(BackupsMixin, ClonesMixin, DrillsMixin, LifecycleMixin, Platform):
    """PGO clusters in `namespaces`. Pass a ready `api_client` (tests pass the test API
    server's), or let it load a kubeconfig (`kubeconfig`, `context`) or the pod's service
    account (`in_cluster`). Construction does no I/O beyond reading the kubeconfig."""

    name = "kubernetes"

    def __init__(
        self,
        *,
        namespaces: Iterable[str],
        api_client: kubernetes.client.ApiClient | None = None,
        kubeconfig: str = "",
        context: str = "",
        in_cluster: bool = False,
        timeout: float = 30.0,
        stuck_after: float = 300.0,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        client = api_client or load_client(
            kubeconfig=kubeconfig, context=context, in_cluster=in_cluster
        )
        super().__init__(
            Kube(client, timeout=timeout),
            namespaces=tuple(dict.fromkeys(namespaces)),
            stuck_after=stuck_after,
            clock=clock,
        )
        self._cache = {}
        self._cache_lock = threading.Lock()
        # What the last clusters() listed, so a fleet sync's repos() calls reuse it instead of
        # a get and a pod list per cluster: {ref: (object, leader pods)}, with when.
        self._listed: dict[ClusterRef, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self._listed_at = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> KubernetesPlatform:
        return cls(
            namespaces=settings.DR_KUBE_NAMESPACES,
            kubeconfig=settings.DR_KUBECONFIG,
            context=settings.DR_KUBE_CONTEXT,
            in_cluster=settings.DR_KUBE_IN_CLUSTER,
            timeout=settings.DR_KUBE_TIMEOUT,
            stuck_after=settings.DR_KUBE_STUCK_AFTER,
        )

    # -- the fleet -----------------------------------------------------------------------

    def clusters(self) -> list[ClusterStatus]:
        """Per namespace: ONE list of PostgresClusters, ONE list of leader pods and ONE list
        of PostgresCluster Warning events (why a restore has not started, and the recent
        warnings the cluster page shows)."""
        found: list[ClusterStatus] = []
        listed: dict[ClusterRef, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for namespace in self.namespaces:
            items, _ = self.kube.list_clusters(namespace)
            if not items:
                continue
            pods = self.kube.list_pods(namespace, state.LEADER_SELECTOR)
            leaders: dict[str, list[dict[str, Any]]] = {}
            for pod in pods:
                cluster = (pod["metadata"].get("labels") or {}).get(state.CLUSTER_LABEL, "")
                leaders.setdefault(cluster, []).append(pod)
            events: dict[str, list[dict[str, Any]]] = {}
            selector = "involvedObject.kind=PostgresCluster,type=Warning"
            for event in self.kube.list_events(namespace, selector):
                name = (event.get("involvedObject") or {}).get("name", "")
                events.setdefault(name, []).append(event)
            for obj in items:
                name = obj["metadata"]["name"]
                found.append(state.derive(obj, leaders.get(name, []), events.get(name, [])))
                listed[ClusterRef(namespace, name)] = (obj, leaders.get(name, []))
        with self._cache_lock:
            self._listed, self._listed_at = listed, time.monotonic()
        return found

    def listed(self, ref: ClusterRef) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The cluster object and leader pods the last clusters() saw, if that was moments
        ago (a fleet sync reads every cluster's repos right after listing them)."""
        with self._cache_lock:
            if time.monotonic() - self._listed_at > LISTED_FRESH_SECONDS:
                return None
            return self._listed.get(ref)

    def cluster_status(self, ref: ClusterRef) -> ClusterStatus:
        obj = self.cluster(ref)
        return state.derive(obj, self.leaders(ref), self.events(ref))

    def cluster_exists(self, ref: ClusterRef) -> bool:
        self.check_namespace(ref)
        return self.kube.get_cluster(ref.namespace, ref.name) is not None
