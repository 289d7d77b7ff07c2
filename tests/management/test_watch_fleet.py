"""manage.py watch_fleet against the test API server: the fleet follows PostgresCluster
changes within seconds through one watch (no polling), survives a 410 Gone relist, and reads
a relist's burst with one fleet read. Its heartbeat file stays young while every namespace's
watch makes progress and ages when one is stuck; --check-heartbeat (the liveness probe of
deploy/watcher.yaml) fails on a missing or stale file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections

from restores import platforms
from restores.management.commands import watch_fleet
from restores.models import Cluster
from restores.platforms.base import ClusterRef
from restores.platforms.kubernetes import PERMISSIONS, KubernetesPlatform
from restores.platforms.kubernetes.api import USER_AGENT
from tests.kube.apiserver import KubeServer
from tests.kube.emulator import PgoEmulator
from tests.kube.fixtures import HIPPO

NS = "db"
OTHER = "db2"
ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"postgresclusters": "postgres-operator.crunchydata.com"}


@pytest.fixture
def kube(kube_server: KubeServer, settings) -> Iterator[KubernetesPlatform]:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local", "kubernetes"]
    settings.DR_KUBE_NAMESPACES = [NS]
    client = kube_server.api_client()
    client.user_agent = USER_AGENT
    platform = KubernetesPlatform(namespaces=[NS], api_client=client, timeout=5)
    platforms.override("kubernetes", platform)
    yield platform
    platforms.override("kubernetes", None)
    # Every request the command sent is one deploy/rbac.yaml grants.
    for request in kube_server.requests:
        if request.user_agent == USER_AGENT:
            base = request.resource.split("/")[0]
            assert any(p.resource == request.resource and p.api_group == GROUPS.get(base, "")
                       and request.verb in p.verbs for p in PERMISSIONS), request


def create(server: KubeServer, name: str, **spec: Any) -> None:
    body = {**HIPPO, "metadata": {"name": name, "namespace": NS},
            "spec": {**HIPPO["spec"], **spec}}
    server.store.create(body)


class Running:
    """watch_fleet in a thread of its own (its own database connection), stopped at the end."""

    def __init__(self, *argv: str) -> None:
        self.command = watch_fleet.Command()
        self.out = io.StringIO()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=argv)
        self.thread.start()

    def _run(self, *argv: str) -> None:
        try:
            call_command(self.command, *argv, stdout=self.out)
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()

    def stop(self) -> str:
        self.command.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.out.getvalue()


@pytest.fixture
def running() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*argv: str) -> Running:
        started.append(Running(*argv))
        return started[-1]

    yield start
    for run in started:
        run.command.stop.set()
        run.thread.join(20)


def wait_for(predicate: Callable[[], bool], seconds: float = 2.0) -> float:
    """Seconds until `predicate()` held; fails after `seconds`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.02)
    return time.monotonic() - started


def row(name: str) -> tuple[str, str, bool] | None:
    found = Cluster.objects.filter(platform="kubernetes", namespace=NS, name=name).first()
    return (found.role, found.state, found.present) if found else None


@pytest.mark.django_db(transaction=True)
def test_the_fleet_follows_changes_within_seconds(kube_server: KubeServer, kube,  # type: ignore[no-untyped-def]
                                                  running) -> None:
    emu = PgoEmulator(kube_server)
    create(kube_server, "hippo")
    emu.settle()
    run = running("--seconds", "60")
    wait_for(lambda: row("hippo") == ("primary", "ready", True), 5)  # the first list
    watching = kube_server.calls[("watch", "postgresclusters")]
    assert watching == 1

    kube_server.store.patch("postgresclusters", NS, "hippo", {"spec": {"shutdown": True}})
    seconds = wait_for(lambda: row("hippo") == ("shutdown", "stopping", True))
    emu.settle()
    seconds = max(seconds, wait_for(lambda: row("hippo") == ("shutdown", "stopped", True)))

    create(kube_server, "copy")
    wait_for(lambda: row("copy") == ("unknown", "bootstrapping", True))
    kube_server.store.delete("postgresclusters", NS, "copy")
    wait_for(lambda: row("copy") == ("unknown", "bootstrapping", False))
    hippo = Cluster.objects.get(name="hippo")
    assert hippo.synced_at is None  # status only: repos and backups are the inventory's

    out = run.stop()
    assert out.startswith("Watching PostgresClusters in db.")
    assert "cluster update(s)" in out
    assert kube_server.calls[("list", "postgresclusters")] == 1  # no polling
    assert kube_server.calls[("watch", "postgresclusters")] == 1
    print(f"\nchange to row: {seconds:.3f} s at most")


@pytest.mark.django_db(transaction=True)
def test_a_410_gone_relist_is_survived(kube_server: KubeServer, kube, running) -> None:  # type: ignore[no-untyped-def]
    create(kube_server, "hippo")
    create(kube_server, "gone")
    kube_server.event_window = 5
    run = running("--seconds", "60", "--watch-timeout", "1")
    wait_for(lambda: row("gone") is not None and row("hippo") is not None, 5)
    wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] == 1)
    kube_server.faults.hang(1.5, verb="watch")  # the renewed watch waits...
    wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] == 2, 5)
    for n in range(8):  # ...while more changes than the window keeps happen
        kube_server.store.patch("postgresclusters", NS, "hippo",
                                {"metadata": {"labels": {"n": str(n)}}})
    kube_server.store.patch("postgresclusters", NS, "hippo", {"spec": {"shutdown": True}})
    kube_server.store.delete("postgresclusters", NS, "gone")
    wait_for(lambda: row("hippo") == ("shutdown", "stopping", True)
             and row("gone") == ("unknown", "bootstrapping", False), 10)
    assert kube_server.calls[("list", "postgresclusters")] == 2  # listed again after the 410

    # and it carries on watching from the new list
    kube_server.store.patch("postgresclusters", NS, "hippo", {"spec": {"shutdown": False}})
    wait_for(lambda: row("hippo") == ("unknown", "bootstrapping", True), 5)
    run.stop()


@pytest.mark.django_db
def test_a_burst_is_read_with_one_fleet_read(kube_server: KubeServer, kube,  # type: ignore[no-untyped-def]
                                             monkeypatch, dispatched) -> None:
    for name in ("a", "b", "c"):
        create(kube_server, name)
    follower = watch_fleet.Follower("kubernetes", kube)
    monkeypatch.setattr(follower, "BULK", 2)
    for name in ("a", "b", "c"):
        follower.on_event("ADDED", kube_server.store.get("postgresclusters", NS, name))
    follower.on_event("MODIFIED", kube_server.store.get("postgresclusters", NS, "a"))
    kube_server.reset_calls()
    assert follower.drain() == 3
    assert kube_server.calls == {("list", "postgresclusters"): 1, ("list", "pods"): 1,
                                 ("list", "events"): 1}
    assert sorted(Cluster.objects.values_list("name", "state")) == [
        ("a", "bootstrapping"), ("b", "bootstrapping"), ("c", "bootstrapping")]
    assert dispatched == []  # a burst's repos are the inventory sync's to read
    # A few events: one read of each cluster, and b's repos asked for (never read yet).
    follower.on_event("DELETED", {"metadata": {"namespace": NS, "name": "a"}})
    follower.on_event("MODIFIED", kube_server.store.get("postgresclusters", NS, "b"))
    kube_server.reset_calls()
    assert follower.drain() == 2
    assert kube_server.calls[("get", "postgresclusters")] == 1
    assert not Cluster.objects.get(name="a").present
    assert dispatched == ["restores.sync_cluster"]
    # Once read with this backup status, another event about b asks for nothing more.
    b = Cluster.objects.get(name="b")
    b.repos_fingerprint = kube.cluster_status(ClusterRef(NS, "b")).fingerprint
    b.save(update_fields=["repos_fingerprint"])
    follower.on_event("MODIFIED", kube_server.store.get("postgresclusters", NS, "b"))
    assert follower.drain() == 1
    assert dispatched == ["restores.sync_cluster"] and follower.repos_asked == 1


@pytest.mark.django_db
def test_it_needs_the_kubernetes_platform(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local"]
    with pytest.raises(CommandError, match="The kubernetes platform is not enabled"):
        call_command("watch_fleet", "--seconds", "1")


@pytest.fixture
def two_namespaces(kube: KubernetesPlatform, settings) -> KubernetesPlatform:  # type: ignore[no-untyped-def]
    settings.DR_KUBE_NAMESPACES = [NS, OTHER]
    platform = KubernetesPlatform(namespaces=[NS, OTHER], api_client=kube.kube.client,
                                  timeout=5)
    platforms.override("kubernetes", platform)
    return platform


def check(path: Path, max_age: float) -> str:
    """What `watch_fleet --check-heartbeat` says when the heartbeat passes."""
    out = io.StringIO()
    call_command("watch_fleet", "--check-heartbeat", str(path), "--max-age", str(max_age),
                 stdout=out)
    return out.getvalue()


def passes(path: Path, max_age: float) -> bool:
    try:
        check(path, max_age)
    except CommandError:
        return False
    return True


def age(path: Path) -> float:
    return time.time() - path.stat().st_mtime


def make_old(path: Path, seconds: float = 600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.django_db(transaction=True)
def test_it_beats_on_an_event(kube_server: KubeServer, kube, running,  # type: ignore[no-untyped-def]
                              tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    create(kube_server, "hippo")
    run = running("--seconds", "60", "--watch-timeout", "30", "--heartbeat", str(beat))
    wait_for(lambda: beat.exists(), 5)  # the first list
    assert age(beat) < 5
    assert check(beat, 5).startswith("Heartbeat ")
    patched = time.time()
    kube_server.store.patch("postgresclusters", NS, "hippo", {"metadata": {"labels": {"n": "1"}}})
    wait_for(lambda: beat.stat().st_mtime >= patched)  # the watch is open, and delivering

    make_old(beat)  # the watch stays open 30 s: only an event can make it young again
    assert not passes(beat, 60)
    kube_server.store.patch("postgresclusters", NS, "hippo", {"spec": {"shutdown": True}})
    wait_for(lambda: age(beat) < 5)
    assert passes(beat, 60)
    assert kube_server.calls[("watch", "postgresclusters")] == 1

    run.stop()
    assert not beat.exists()  # a stopped watch leaves no heartbeat behind


@pytest.mark.django_db(transaction=True)
def test_a_quiet_namespace_beats_at_each_watch_renewal(kube_server: KubeServer, kube,  # type: ignore[no-untyped-def]
                                                       running, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    run = running("--seconds", "60", "--watch-timeout", "1", "--heartbeat", str(beat))
    wait_for(lambda: beat.exists(), 5)
    # Once the first watch has been renewed, nothing but a renewal beats: there are no events.
    wait_for(lambda: kube_server.calls[("watch", "postgresclusters")] >= 2, 3)
    make_old(beat)
    wait_for(lambda: age(beat) < 5, 3)
    run.stop()


@pytest.mark.django_db(transaction=True)
def test_a_stuck_watch_lets_the_heartbeat_go_stale(kube_server: KubeServer, two_namespaces,  # type: ignore[no-untyped-def]
                                                   running, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    run = running("--seconds", "60", "--watch-timeout", "1", "--heartbeat", str(beat))
    wait_for(lambda: beat.exists(), 5)
    assert passes(beat, 1.5)
    # The next watch of one namespace gets no answer for 3 s, as on a dead connection,
    # while the other namespace's watch renews every second.
    kube_server.faults.hang(3, verb="watch", path=f"/namespaces/{OTHER}/")
    wait_for(lambda: not passes(beat, 1.5), 4)
    with pytest.raises(CommandError, match="s old \\(at most 2 s allowed\\)"):
        check(beat, 1.5)
    wait_for(lambda: passes(beat, 1.5), 5)  # answered: the watch goes on, and so does the beat
    run.stop()


@pytest.mark.django_db(transaction=True)
def test_it_does_not_beat_until_every_namespace_was_listed(kube_server: KubeServer,  # type: ignore[no-untyped-def]
                                                           two_namespaces, running,
                                                           tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()  # young, but left by an earlier run
    kube_server.faults.error(403, times=1000, verb="list", path=f"/namespaces/{OTHER}/")
    create(kube_server, "hippo")
    run = running("--seconds", "60", "--watch-timeout", "1", "--heartbeat", str(beat))
    wait_for(lambda: row("hippo") is not None, 5)  # the first namespace is followed...
    wait_for(lambda: kube_server.calls[("list", "postgresclusters")] >= 3, 5)
    assert not beat.exists()  # ...but the other cannot even be listed
    with pytest.raises(CommandError) as missing:
        check(beat, 60)
    assert str(missing.value) == watch_fleet.HEARTBEAT_MISSING.format(path=beat)
    run.stop()


def test_the_check_fails_on_a_missing_or_stale_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    with pytest.raises(CommandError) as missing:
        check(beat, 60)
    assert str(missing.value) == watch_fleet.HEARTBEAT_MISSING.format(path=beat)

    beat.touch()
    make_old(beat, 61)
    with pytest.raises(CommandError) as stale:
        check(beat, 60)
    assert str(stale.value) == watch_fleet.HEARTBEAT_STALE.format(path=beat, age=61,
                                                                  max_age=60)
    make_old(beat, 30)
    assert check(beat, 60).startswith("Heartbeat 30.")


def test_it_needs_a_directory_for_the_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "missing" / "heartbeat"
    with pytest.raises(CommandError) as error:
        call_command("watch_fleet", "--seconds", "1", "--heartbeat", str(beat))
    assert str(error.value) == watch_fleet.NO_HEARTBEAT_DIR.format(path=beat,
                                                                   parent=beat.parent)


def test_it_needs_a_max_age_to_check() -> None:
    with pytest.raises(CommandError, match="--check-heartbeat needs --max-age"):
        call_command("watch_fleet", "--check-heartbeat", "/nonexistent")


def test_the_probe_command_exits_1_on_a_stale_heartbeat_and_0_on_a_fresh_one(
        tmp_path: Path) -> None:
    """As the kubelet runs it (deploy/watcher.yaml): a process, judged by its exit status."""
    beat = tmp_path / "heartbeat"
    beat.touch()
    probe = [sys.executable, "manage.py", "watch_fleet", "--check-heartbeat", str(beat),
             "--max-age", "60"]
    make_old(beat, 120)
    stale = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1
    assert "s old (at most 60 s allowed)" in stale.stderr
    make_old(beat, 1)
    fresh = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("Heartbeat ")


@pytest.mark.django_db
def test_a_failed_write_waits_before_the_next_attempt(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A database that refuses connections is tried again after a pause, not in a busy loop
    that burns a CPU and floods the log."""
    follower = watch_fleet.Follower("kubernetes", platform=None)
    monkeypatch.setattr(follower, "RETRY_AFTER", 0.3)
    attempts = []

    def refused(batch: dict[Any, str]) -> int:
        attempts.append(batch)
        raise DatabaseError("connection refused")

    monkeypatch.setattr(follower, "_apply", refused)
    follower.on_event("DELETED", {"metadata": {"namespace": NS, "name": "a"}})
    assert follower.wait(0.2)
    assert follower.drain() == 0
    started = time.monotonic()
    while not follower.wait(0.05):  # as the command's loop does
        pass
    assert time.monotonic() - started >= 0.25
    assert len(attempts) == 1
    monkeypatch.setattr(follower, "_apply", lambda batch: len(batch))
    assert follower.drain() == 1  # the kept event, written once the database is back
