"""What every part of the Kubernetes platform shares: the API, the clock, reading one
cluster with its leader pods and events, and writes that are safe to repeat."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..base import ClusterRef, PermanentError, TransientError
from . import state
from .api import Conflict, Kube

# Stamped on what the console writes, so a retry recognises its own work.
OPERATION_ANNOTATION = "dr-console/operation"  # on clusters the console created
STANDBY_OF_ANNOTATION = "dr-console/standby-of"  # "<namespace>/<name>" of a standby's primary
# When the console set PGO's trigger annotation `<key>`: "<operation id> <ISO time>". Kept in
# the cluster, so a new worker still knows how long PGO has been sitting on the request.
REQUESTED_AT = "dr-console/requested-{what}"
CONFLICT_ATTEMPTS = 5

NO_CLUSTER = "There is no PostgresCluster {name} in namespace {namespace}."
KEEPS_CHANGING = "PostgresCluster {name} kept changing under the console ({n} conflicts in a row)."
NOT_WATCHED = "Namespace {namespace} is not one the console manages ({namespaces})."

Decide = Callable[[dict[str, Any]], "dict[str, Any] | None"]


class KubeCore:
    """State and helpers for the mixins that make up KubernetesPlatform."""

    name = "kubernetes"

    def __init__(
        self,
        kube: Kube,
        *,
        namespaces: tuple[str, ...],
        stuck_after: float,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.stuck_after = stuck_after
        self.clock = clock

    def now(self) -> dt.datetime:
        return self.clock()

    def check_namespace(self, ref: ClusterRef) -> None:
        if ref.namespace not in self.namespaces:
            raise PermanentError(
                NOT_WATCHED.format(namespace=ref.namespace, namespaces=", ".join(self.namespaces))
            )

    def cluster(self, ref: ClusterRef) -> dict[str, Any]:
        """The PostgresCluster; PermanentError when it does not exist."""
        self.check_namespace(ref)
        obj = self.kube.get_cluster(ref.namespace, ref.name)
        if obj is None:
            raise PermanentError(NO_CLUSTER.format(name=ref.name, namespace=ref.namespace))
        return obj

    def leaders(self, ref: ClusterRef) -> list[dict[str, Any]]:
        """The cluster's pods with role=master (the primary or the standby leader)."""
        selector = f"{state.CLUSTER_LABEL}={ref.name},{state.LEADER_SELECTOR}"
        return self.kube.list_pods(ref.namespace, selector)

    def events(self, ref: ClusterRef) -> list[dict[str, Any]]:
        """Warning events about the PostgresCluster (§7), oldest first."""
        selector = f"involvedObject.kind=PostgresCluster,involvedObject.name={ref.name}"
        found = self.kube.list_events(ref.namespace, selector)
        warnings = [e for e in found if e.get("type") == "Warning"]
        return sorted(warnings, key=lambda e: str(e.get("lastTimestamp") or ""))

    def patch_fresh(self, ref: ClusterRef, decide: Decide) -> tuple[dict[str, Any], bool]:
        """Read the cluster, let `decide` pick a merge patch (None: nothing to do), and send
        it conditionally on the resourceVersion read; on a 409 read again and decide again.
        Returns (the object now, whether a patch was sent)."""
        for _attempt in range(CONFLICT_ATTEMPTS):
            obj = self.cluster(ref)
            patch = decide(obj)
            if patch is None:
                return obj, False
            patch.setdefault("metadata", {})["resourceVersion"] = obj["metadata"][
                "resourceVersion"
            ]
            try:
                return self.kube.patch_cluster(ref.namespace, ref.name, patch), True
            except Conflict:
                continue
        raise TransientError(KEEPS_CHANGING.format(name=ref.name, n=CONFLICT_ATTEMPTS))

    # -- "requested at" stamps for stuck detection -----------------------------------------

    def stamp(self, what: str, operation_id: str) -> dict[str, str]:
        """The annotation recording that `operation_id` asked PGO for `what` now."""
        when = self.now().astimezone(dt.UTC).isoformat(timespec="seconds")
        return {REQUESTED_AT.format(what=what): f"{operation_id} {when}"}

    def waited(self, obj: dict[str, Any], what: str, operation_id: str) -> float | None:
        """Seconds since the console asked for `what` for this operation (None: unknown)."""
        raw = state.annotations(obj).get(REQUESTED_AT.format(what=what), "")
        op, _, when = raw.partition(" ")
        moment = state.timestamp(when) if op == operation_id else None
        return (self.now() - moment).total_seconds() if moment else None

    def is_stuck(self, obj: dict[str, Any], what: str, operation_id: str) -> bool:
        waited = self.waited(obj, what, operation_id)
        return waited is not None and waited > self.stuck_after

    def age(self, obj: dict[str, Any]) -> float:
        created = state.timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
        return (self.now() - created).total_seconds() if created else 0.0
