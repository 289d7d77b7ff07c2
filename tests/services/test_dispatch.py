"""With the broker the console uses stopped, requests still answer: an operation is queued
(and says so), the restore form loads; once the broker is back the sweep sends it.

A Redis server of this test's own, on a free port, is the broker; the test stops it and
starts it again on the same port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.test import Client

from restores import tasks
from restores.models import Cluster, Operation
from tests.broker import use_broker
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url).ping():
                    return
            assert time.monotonic() < deadline, "the test's Redis did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def queued(self) -> int:
        return int(redis.Redis.from_url(self.url).llen("celery"))


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A running broker of the test's own, with the real task sends (not the suite's stub)."""
    monkeypatch.undo()  # the autouse `dispatched` fixture replaced delay() with a list
    found = Broker(_free_port(), tmp_path)
    found.start()
    previous = use_broker(found.url)
    try:
        yield found
    finally:
        found.stop()
        use_broker(previous)


def test_a_backup_asked_for_while_the_broker_is_down_is_queued_then_sent(
    broker: Broker, hippo_row: Cluster, django_capture_on_commit_callbacks, settings  # type: ignore[no-untyped-def]
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    broker.stop()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(hippo_row.get_absolute_url() + "backup/",
                        {"repo": "repo1", "backup_type": "full"})
    assert r.status_code == 302
    op = Operation.objects.get()
    assert r["Location"] == op.get_absolute_url() and op.status == "pending"
    page = client.get(op.get_absolute_url()).content.decode()
    assert "Queued: the worker cannot be reached right now" in page
    assert client.get(hippo_row.get_absolute_url() + "restore/").status_code == 200
    assert client.get(hippo_row.get_absolute_url()).status_code == 200

    broker.start()  # the same port: the console's configuration did not change
    assert broker.queued() == 0
    settings.DR_SWEEP_INTERVAL = 0
    Operation.objects.filter(pk=op.pk).update(created_at=op.created_at.replace(year=2025))
    assert tasks.sweep_operations() == 1
    assert broker.queued() == 1  # its first step is on its way to a worker
    op.refresh_from_db()
    assert op.status == "pending"
