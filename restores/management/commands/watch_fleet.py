"""Follow the Kubernetes platform's PostgresClusters with a watch and keep the fleet in step.

    ./manage.py watch_fleet                  # until SIGTERM / SIGINT
    ./manage.py watch_fleet --seconds 60     # bounded (tests, cron-style runs)
    ./manage.py watch_fleet --heartbeat /tmp/watch_fleet.heartbeat --watch-timeout 60
    ./manage.py watch_fleet --check-heartbeat /tmp/watch_fleet.heartbeat --max-age 180

One list, then one long-lived watch per namespace (bookmarks, a relist on 410 Gone: see
restores.platforms.kubernetes.watch). Each ADDED / MODIFIED event refreshes that one
cluster's row (role, state, message); DELETED marks it absent. Events arrive on the watch
threads and are coalesced by cluster: a burst of PGO status writes is one refresh. A batch
larger than BULK (the first list, a relist) is read with ONE fleet read instead of one read
per cluster. When PGO's backup status of a cluster moved (a backup started or ended), that
cluster's repos are read at once by a queued task; otherwise repos and backups stay with the
periodic inventory sync and the operations.

With --heartbeat, the file's mtime is the time of the OLDEST namespace's latest sign of life
(its list, a watch request the API server accepted, an event), written by the loop that
applies the events. A watch renewed every --watch-timeout seconds keeps it younger than that;
one on a connection that died silently is given up by the client's read timeout (--watch-timeout
+ DR_KUBE_TIMEOUT after its last byte) and reopened. So a file older than 2 x --watch-timeout +
DR_KUBE_TIMEOUT means a namespace's watch, or the loop itself, is stuck. --check-heartbeat (an
exec probe) exits 1 when the file is missing or older than --max-age.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from restores import inventory, platforms
from restores.models import Cluster
from restores.platforms.base import ClusterRef, ClusterStatus, PlatformError
from restores.tasks import sync_cluster

if TYPE_CHECKING:
    from restores.platforms.kubernetes.api import Kube

log = logging.getLogger(__name__)

PLATFORM = "kubernetes"
Key = tuple[str, str]  # (namespace, name)

HEARTBEAT_MISSING = ("No heartbeat at {path}: watch_fleet is not running, or has not yet "
                     "listed the PostgresClusters of every namespace.")
HEARTBEAT_STALE = ("The heartbeat at {path} is {age:.0f} s old (at most {max_age:.0f} s "
                   "allowed): a namespace's watch, or the loop that applies its events, "
                   "is stuck.")
HEARTBEAT_FRESH = "Heartbeat {age:.1f} s old."
MAX_AGE_NEEDED = ("--check-heartbeat needs --max-age SECONDS (at least 2 x --watch-timeout "
                  "+ DR_KUBE_TIMEOUT).")
NO_HEARTBEAT_DIR = "--heartbeat {path}: {parent} is not a directory."


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
        self.repos_asked = 0  # clusters whose repos were queued for a read

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
            cluster, _ = Cluster.objects.update_or_create(
                platform=self.platform_name, namespace=status.ref.namespace,
                name=status.ref.name, defaults=fields,
            )
            # PGO says a backup started or ended (the fingerprint of its backup status moved):
            # read this cluster's repos now rather than at the next inventory sync. Not for a
            # (re)list's burst: the inventory sync reads those, all at once.
            if (len(live) <= self.BULK and status.fingerprint
                    and status.fingerprint != cluster.repos_fingerprint):
                try:
                    sync_cluster.delay(cluster.pk)
                except Exception as exc:  # the broker is away: the inventory sync reads it
                    log.warning("watch_fleet: queueing a read of %s failed: %s", cluster, exc)
                else:
                    self.repos_asked += 1
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


class Heartbeat:
    """Each watched namespace's latest sign of life (`beat`, from the watch threads), written
    by the main loop (`write`) as `path`'s mtime: the OLDEST of them, so one stuck namespace
    ages the file however busy the others are, and so does a main loop that stops writing."""

    def __init__(self, path: Path | None, namespaces: Iterable[str]) -> None:
        self.path = path
        # The keys are fixed here: the watch threads only replace values (atomic), and the
        # main loop may read them without a lock.
        self._last: dict[str, float | None] = dict.fromkeys(namespaces)
        self._written: float | None = None

    def beat(self, namespace: str) -> None:
        if namespace in self._last:
            self._last[namespace] = time.time()

    def write(self) -> None:
        """Nothing until every namespace gave a first sign (its first list)."""
        values = list(self._last.values())
        if self.path is None or not values or None in values:
            return
        oldest = min(v for v in values if v is not None)
        if oldest == self._written:
            return
        self._written = oldest  # on failure too: tried again at the next beat, not at once
        try:
            self.path.touch()
            os.utime(self.path, (oldest, oldest))
        except OSError as exc:  # the probe will say the file is missing or stale
            log.warning("watch_fleet: writing the heartbeat %s failed: %s", self.path, exc)

    def remove(self) -> None:
        """A file left by an earlier run (an emptyDir outlives a container restart) or by
        this one once stopped says nothing about a running watch."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self._written = None


def heartbeat_kube(kube: Kube, heartbeat: Heartbeat) -> Kube:
    """API access on `kube`'s client that tells `heartbeat` about each list and each watch
    request the API server accepted. The server ends a watch after timeoutSeconds and the
    watch thread opens the next one at once, so a healthy namespace beats at least every
    --watch-timeout seconds even when no PostgresCluster changes."""
    # Imported here, as in _watch(): --check-heartbeat (a probe every few seconds) does
    # without loading the kubernetes client.
    from restores.platforms.kubernetes.api import Kube

    class HeartbeatKube(Kube):
        def list_clusters(self, namespace: str) -> tuple[list[dict[str, Any]], str]:
            found = super().list_clusters(namespace)
            heartbeat.beat(namespace)
            return found

        def watch_clusters(self, namespace: str, resource_version: str, timeout: int) -> Any:
            resp = super().watch_clusters(namespace, resource_version, timeout)
            heartbeat.beat(namespace)
            return resp

    return HeartbeatKube(kube.client, timeout=kube.timeout)


def heartbeat_age(path: Path, max_age: float) -> float:
    """The heartbeat file's age in seconds; CommandError (exit status 1) when it is missing
    or older than `max_age`."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise CommandError(HEARTBEAT_MISSING.format(path=path)) from None
    age = time.time() - mtime
    if age > max_age:
        raise CommandError(HEARTBEAT_STALE.format(path=path, age=age, max_age=max_age))
    return age


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
        parser.add_argument("--heartbeat", type=Path, default=None, metavar="PATH",
                            help="Keep this file's mtime at the oldest namespace's latest "
                                 "sign of life (list, watch renewal, event).")
        parser.add_argument("--check-heartbeat", type=Path, default=None, metavar="PATH",
                            help="Only check the heartbeat file (a liveness probe): exit 1 "
                                 "when it is missing or older than --max-age.")
        parser.add_argument("--max-age", type=float, default=None, metavar="SECONDS",
                            help="With --check-heartbeat: the oldest heartbeat that passes.")

    def handle(self, *args: Any, seconds: float, watch_timeout: int, heartbeat: Path | None,
               check_heartbeat: Path | None, max_age: float | None, **options: Any) -> None:
        if check_heartbeat is not None:
            if max_age is None or max_age <= 0:
                raise CommandError(MAX_AGE_NEEDED)
            age = heartbeat_age(check_heartbeat, max_age)
            self.stdout.write(HEARTBEAT_FRESH.format(age=age))
            return
        self._watch(seconds=seconds, watch_timeout=watch_timeout, heartbeat_path=heartbeat)

    def _watch(self, *, seconds: float, watch_timeout: int, heartbeat_path: Path | None) -> None:
        from restores.platforms.kubernetes import KubernetesPlatform, watch_clusters

        if heartbeat_path is not None and not heartbeat_path.parent.is_dir():
            raise CommandError(NO_HEARTBEAT_DIR.format(path=heartbeat_path,
                                                       parent=heartbeat_path.parent))
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
        heartbeat = Heartbeat(heartbeat_path, platform.namespaces)
        heartbeat.remove()

        def on_event(kind: str, obj: dict[str, Any]) -> None:
            heartbeat.beat(str((obj.get("metadata") or {}).get("namespace") or ""))
            follower.on_event(kind, obj)

        previous = self._on_signals()
        started = time.monotonic()
        watcher = threading.Thread(
            target=watch_clusters, name="watch_fleet",
            args=(heartbeat_kube(platform.kube, heartbeat), platform.namespaces, on_event,
                  self.stop),
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
                # Here, not on the watch threads: a loop stuck in a drain stops the heartbeat.
                heartbeat.write()
        finally:
            self.stop.set()
            heartbeat.remove()
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
