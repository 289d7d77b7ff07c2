"""Follow the Kubernetes platform's PostgresClusters with a watch and keep the fleet in step.

    ./manage.py watch_fleet                  # until SIGTERM / SIGINT
    ./manage.py watch_fleet --seconds 60     # bounded (tests, cron-style runs)

One list, then one long-lived watch per namespace (bookmarks, a relist on 410 Gone: see
restores.platforms.kubernetes.watch). Each ADDED / MODIFIED event refreshes that one
cluster's row (role, state, message); DELETED marks it absent. Events arrive on the watch
threads and are coalesced by cluster: a burst of PGO status writes is one refresh. A batch
larger than BULK (the first list, a relist) is read with ONE fleet read instead of one read
per cluster. Repos and backups stay with the periodic inventory sync and the operations.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from restores import inventory, platforms
from restores.models import Cluster
from restores.platforms.base import ClusterRef, ClusterStatus, PlatformError

log = logging.getLogger(__name__)

PLATFORM = "kubernetes"
Key = tuple[str, str]  # (namespace, name)


class Follower:
    """What the watch threads hand over (`on_event`), applied to the database by `drain`
    in the thread that owns the connection."""

    BULK = 20
    RETRY_AFTER = 2.0  # seconds between attempts to write while the database is away

    def __init__(self, platform_name: str, platform: Any) -> None:
        self.platform_name = platform_name
        self.platform = platform
        self._pending: dict[Key, str] = {}
        self._cond = threading.Condition()
        self._retry_at = 0.0  # monotonic; no write before it after a failed one
        self.events = 0
        self.refreshed = 0

    def on_event(self, kind: str, obj: dict[str, Any]) -> None:
        """Called on a watch thread: remember the newest kind of event per cluster."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        with self._cond:
            self.events += 1
            self._pending.pop(key, None)  # keep the order of the latest events
            self._pending[key] = kind
            self._cond.notify()

    def wait(self, timeout: float) -> bool:
        """Whether a drain is due, within `timeout`: events are pending and no failed write
        asked for a pause (without it, a database that refuses connections would be retried
        in a busy loop, thousands of times a second)."""
        with self._cond:
            if not self._pending or time.monotonic() < self._retry_at:
                self._cond.wait(timeout)
            return bool(self._pending) and time.monotonic() >= self._retry_at

    def drain(self) -> int:
        """Apply every pending event; the number of clusters refreshed or marked absent."""
        with self._cond:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            done = self._apply(batch)
        except DatabaseError:
            # The connection broke (a database restart): drop it, so the next batch
            # reconnects, and keep these events for it.
            log.exception("watch_fleet: writing %d cluster(s) failed", len(batch))
            connection.close()
            with self._cond:
                self._pending = {**batch, **self._pending}
                self._retry_at = time.monotonic() + self.RETRY_AFTER
            return 0
        self.refreshed += done
        return done

    def _apply(self, batch: dict[Key, str]) -> int:
        rows = Cluster.objects.filter(platform=self.platform_name)
        gone = [key for key, kind in batch.items() if kind == "DELETED"]
        for namespace, name in gone:
            rows.filter(namespace=namespace, name=name, present=True).update(present=False)
        live = [key for key, kind in batch.items() if kind != "DELETED"]
        statuses = self._statuses(live)
        for status in statuses:
            fields = inventory._cluster_fields(status)
            # Only the status was read: leave synced_at (repos and backups) to the inventory
            # sync, so a page that wants fresh backups still asks for them.
            fields.pop("synced_at")
            Cluster.objects.update_or_create(
                platform=self.platform_name, namespace=status.ref.namespace,
                name=status.ref.name, defaults=fields,
            )
        return len(gone) + len(statuses)

    def _statuses(self, keys: list[Key]) -> list[ClusterStatus]:
        if len(keys) > self.BULK:  # a (re)list: ONE fleet read instead of one per cluster
            try:
                wanted = set(keys)
                return [s for s in self.platform.clusters()
                        if (s.ref.namespace, s.ref.name) in wanted]
            except PlatformError as exc:
                log.warning("watch_fleet: reading the fleet failed: %s", exc.message)
                return []
        found = []
        for namespace, name in keys:
            try:
                found.append(self.platform.cluster_status(ClusterRef(namespace, name)))
            except PlatformError as exc:  # deleted meanwhile (its DELETED event follows)
                log.warning("watch_fleet: reading %s/%s failed: %s", namespace, name,
                            exc.message)
        return found


class Command(BaseCommand):
    help = (
        "Follow the Kubernetes platform's PostgresClusters (list + watch) and refresh each "
        "cluster's row in the console as it changes. Run it beside the Celery worker."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop = threading.Event()  # set it (or send SIGTERM / SIGINT) to end the run
        self.follower: Follower | None = None

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seconds", type=float, default=0.0,
                            help="Stop after this many seconds (default: run until stopped).")
        parser.add_argument("--watch-timeout", type=int, default=300,
                            help="Seconds one watch request stays open before it is renewed.")

    def handle(self, *args: Any, seconds: float, watch_timeout: int, **options: Any) -> None:
        from restores.platforms.kubernetes import KubernetesPlatform, watch_clusters

        if PLATFORM not in platforms.enabled():
            raise CommandError(f"The {PLATFORM} platform is not enabled: add it to "
                               f"DR_PLATFORMS (now {','.join(settings.DR_PLATFORMS)}).")
        try:
            platform = platforms.get(PLATFORM)
        except PlatformError as exc:
            raise CommandError(exc.message) from exc
        if not isinstance(platform, KubernetesPlatform):
            raise CommandError(f"The {PLATFORM} platform cannot be watched.")
        follower = self.follower = Follower(PLATFORM, platform)
        previous = self._on_signals()
        started = time.monotonic()
        watcher = threading.Thread(
            target=watch_clusters, name="watch_fleet",
            args=(platform.kube, platform.namespaces, follower.on_event, self.stop),
            kwargs={"timeout_seconds": watch_timeout}, daemon=True,
        )
        watcher.start()
        self.stdout.write(f"Watching PostgresClusters in {', '.join(platform.namespaces)}.")
        try:
            while not self.stop.is_set():
                if seconds and time.monotonic() - started >= seconds:
                    self.stop.set()
                    break
                if follower.wait(0.2):
                    follower.drain()
        finally:
            self.stop.set()
            watcher.join(timeout=15)
            follower.drain()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"Stopped after {time.monotonic() - started:.1f} s: "
                          f"{follower.events} event(s), {follower.refreshed} cluster update(s).")

    def _on_signals(self) -> dict[int, Any]:
        """SIGTERM and SIGINT end the run cleanly (only the main thread may set handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: self.stop.set())
        return previous
