"""Following PostgresClusters as they change: list once, then watch from the list's
resourceVersion with bookmarks; relist on 410 Gone. No per-object polling.

    stop = threading.Event()
    watch_clusters(api_client, ["db"], on_event, stop)   # blocks until stop is set

`on_event(kind, obj)` gets "ADDED" / "MODIFIED" / "DELETED" with the PostgresCluster dict.
After a relist every object that exists is delivered again as "ADDED" (treat it as an
upsert), and objects that vanished meanwhile as "DELETED". Run it in a worker thread or a
management command; it retries transient API errors with a capped backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import kubernetes.client
from kubernetes.watch.watch import iter_resp_lines

from ..base import PlatformError
from .api import Kube

log = logging.getLogger(__name__)

OnEvent = Callable[[str, dict[str, Any]], None]
GONE = 410


class _Expired(Exception):
    pass


class ClusterWatch:
    """One namespace: list, watch, relist when the resourceVersion expired."""

    def __init__(self, kube: Kube, namespace: str, on_event: OnEvent, stop: threading.Event,
                 *, timeout_seconds: int = 300, max_backoff: float = 30.0) -> None:
        self.kube, self.namespace, self.on_event, self.stop = kube, namespace, on_event, stop
        self.timeout_seconds = timeout_seconds
        self.max_backoff = max_backoff
        self.known: dict[str, str] = {}  # name -> resourceVersion delivered
        self.resource_version = ""
        self.relists = 0
        self._resp: Any = None
        self._lock = threading.Lock()

    def relist(self) -> None:
        items, self.resource_version = self.kube.list_clusters(self.namespace)
        self.relists += 1
        seen = {}
        for obj in items:
            name = obj["metadata"]["name"]
            seen[name] = obj["metadata"].get("resourceVersion", "")
            self.on_event("ADDED", obj)
        for name in set(self.known) - set(seen):
            self.on_event("DELETED", {"metadata": {"name": name, "namespace": self.namespace}})
        self.known = seen

    def _handle(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == GONE:
                raise _Expired(obj.get("message", ""))
            raise PlatformError(f"watch error: {obj.get('message')}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.known.pop(name, None)
        else:
            self.known[name] = rv or ""
        self.on_event(str(kind), obj)

    def _watch_once(self) -> None:
        try:
            resp = self.kube.watch_clusters(self.namespace, self.resource_version,
                                            self.timeout_seconds)
        except PlatformError as exc:
            if getattr(exc, "detail", "") and f'"code":{GONE}' in exc.detail.replace(" ", ""):
                raise _Expired(exc.message) from exc
            raise
        with self._lock:
            self._resp = resp
        try:
            for line in iter_resp_lines(resp):
                if self.stop.is_set():
                    return
                if line and not line.isspace():
                    self._handle(json.loads(line))
        finally:
            with self._lock:
                self._resp = None
            resp.release_conn()

    def interrupt(self) -> None:
        """Unblock a read in progress (called from another thread on stop)."""
        with self._lock:
            if self._resp is not None:
                self._resp.shutdown()

    def run(self) -> None:
        backoff = 0.5
        need_list = True
        while not self.stop.is_set():
            try:
                if need_list:
                    self.relist()
                    need_list = False
                self._watch_once()
                backoff = 0.5
            except _Expired:
                log.info("watch of %s expired (410 Gone): listing again", self.namespace)
                need_list = True
            except (PlatformError, OSError, ValueError) as exc:
                if self.stop.is_set():
                    return
                log.warning("watch of %s failed: %s; retrying in %.1f s", self.namespace, exc,
                            backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception as exc:  # urllib3 read errors after a shutdown, and the like
                if self.stop.is_set():
                    return
                log.warning("watch of %s broke: %r", self.namespace, exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)


def watch_clusters(
    api_client: kubernetes.client.ApiClient | Kube,
    namespaces: Iterable[str],
    on_event: OnEvent,
    stop: threading.Event,
    *,
    timeout_seconds: int = 300,
    watches: list[ClusterWatch] | None = None,
) -> None:
    """Follow every PostgresCluster of `namespaces` until `stop` is set (one thread per
    namespace; `on_event` may be called from any of them). `watches`, if given, receives
    the ClusterWatch objects (for their `relists` counters)."""
    kube = api_client if isinstance(api_client, Kube) else Kube(api_client)
    started = [ClusterWatch(kube, ns, on_event, stop, timeout_seconds=timeout_seconds)
               for ns in dict.fromkeys(namespaces)]
    if watches is not None:
        watches.extend(started)
    threads = [threading.Thread(target=w.run, name=f"watch-{w.namespace}", daemon=True)
               for w in started]
    for thread in threads:
        thread.start()
    stop.wait()
    for w in started:
        w.interrupt()
    for thread in threads:
        thread.join(timeout=10)
