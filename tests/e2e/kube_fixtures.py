"""Fixtures for the browser test of the clone wizard on Kubernetes (test_kube_wizard.py).

The Kubernetes side lives in the test process: the test API server, the PGO emulator (its
time passing on a ticker thread) and a KubernetesPlatform on the server's ApiClient, put in
the platform registry with `platforms.override`. The live server's thread sees that
override; a `celery worker` subprocess would not (it would build its own platform from the
settings and find no cluster). So the Celery worker runs in this process too: celery's
embedded test worker (`celery.contrib.testing.worker.start_worker`) with a threads pool, on
a Redis database of its own (below). It is still the real path: the live server's submit
dispatches on commit through the broker, and every later step is scheduled by the worker
itself with a countdown.

The broker is a Redis database nothing else uses: 11. (The other browser tests use 13, the
unit tests 14, a console run from the checkout 0, and the benchmarks' worker 12: a second
consumer on the same database takes some of the messages, and those steps never run here.)
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import signals

from restores import inventory, platforms
from restores.models import Cluster
from restores.platforms.kubernetes import KubernetesPlatform
from restores.platforms.kubernetes.api import USER_AGENT
from tests.broker import use_broker
from tests.kube.apiserver import KubeServer
from tests.kube.emulator import PgoEmulator
from tests.kube.fixtures import HIPPO

KUBE_REDIS_URL = os.getenv("DR_E2E_KUBE_REDIS_URL", "redis://127.0.0.1:6379/11")
NS = "db"  # where hippo lives
TARGET_NS = "dr"  # where the wizard puts the clone: another namespace the console manages
TICK_SECONDS = 0.2


class Ticker:
    """PGO's time passing while the browser and the worker do their part."""

    def __init__(self, emu: PgoEmulator) -> None:
        self.emu = emu
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="pgo-ticker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(TICK_SECONDS):
            try:
                self.emu.tick()
            except Exception as exc:  # kept for the test to report
                self.errors.append(exc)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@dataclasses.dataclass
class KubeConsole:
    server: KubeServer
    emu: PgoEmulator
    platform: KubernetesPlatform
    created: list[dict[str, Any]]  # every PostgresCluster as first stored (ADDED)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.server.store.get("postgresclusters", namespace, name)


@pytest.fixture
def kube_console(settings) -> Iterator[KubeConsole]:  # type: ignore[no-untyped-def]
    """The test API server with PGO, and the console's kubernetes platform pointed at it."""
    server = KubeServer().start()
    emu = PgoEmulator(server)
    created: list[dict[str, Any]] = []
    server.on_change.append(
        lambda kind, obj, old: created.append(obj)
        if kind == "ADDED" and obj.get("kind") == "PostgresCluster" else None
    )
    settings.DR_PLATFORMS = ["local", "kubernetes"]
    settings.DR_KUBE_NAMESPACES = [NS, TARGET_NS]
    settings.DR_POLL_INTERVAL = 1
    client = server.api_client()
    client.user_agent = USER_AGENT
    platform = KubernetesPlatform(namespaces=settings.DR_KUBE_NAMESPACES, api_client=client,
                                  timeout=10, stuck_after=120)
    platforms.override("kubernetes", platform)
    try:
        yield KubeConsole(server, emu, platform, created)
    finally:
        platforms.override("kubernetes", None)
        server.stop()
    assert not server.hook_errors, server.hook_errors


@pytest.fixture
def kube_hippo(transactional_db, kube_console: KubeConsole) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    """hippo, a PGO cluster ready with its first backup, synced into the console; PGO's
    time keeps passing until the test ends."""
    kube_console.server.store.create({**HIPPO, "metadata": {"name": "hippo", "namespace": NS}},
                                     validate=True)
    kube_console.emu.settle()
    result = inventory.platform_sync(platform_name="kubernetes")
    assert not result.errors, result.errors
    ticker = Ticker(kube_console.emu)
    try:
        yield Cluster.objects.get(platform="kubernetes", namespace=NS, name="hippo")
    finally:
        ticker.close()
    assert not ticker.errors, ticker.errors


@pytest.fixture
def kube_ticking(transactional_db, kube_console: KubeConsole) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """PGO's time passing until the test ends, with no cluster made beforehand."""
    ticker = Ticker(kube_console.emu)
    try:
        yield
    finally:
        ticker.close()
    assert not ticker.errors, ticker.errors


@pytest.fixture
def kube_broker() -> Iterator[str]:
    """What this process sends (the live server's dispatches) goes to Redis db 11."""
    client = redis.Redis.from_url(KUBE_REDIS_URL)
    client.flushdb()
    previous = use_broker(KUBE_REDIS_URL)
    try:
        yield KUBE_REDIS_URL
    finally:
        use_broker(previous)
        client.flushdb()
        client.close()


@dataclasses.dataclass
class InProcessWorker:
    worker: Any
    ran: list[str]  # names of the tasks it ran, in order


@pytest.fixture
def kube_worker(kube_broker: str, kube_console: KubeConsole,  # type: ignore[no-untyped-def]
                transactional_db) -> Iterator[InProcessWorker]:
    """Celery's embedded worker (threads) on db 11, stopped before the platform goes."""
    from celery.contrib.testing.worker import start_worker

    from dr_console.celery import app

    ran: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        ran.append(getattr(sender, "name", "?"))

    signals.task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                          loglevel="WARNING", shutdown_timeout=30) as worker:
            yield InProcessWorker(worker, ran)
    finally:
        signals.task_postrun.disconnect(record)
