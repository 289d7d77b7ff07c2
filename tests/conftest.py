from __future__ import annotations

from collections.abc import Iterator

import pytest

from restores import inventory, platforms
from restores.models import Backup, Cluster
from tests.factories import T0
from tests.fakes import FakePlatform, make_backup

# The test Kubernetes (API server, PGO emulator, the platform and the console on it).
pytest_plugins = ["tests.kube.fixtures"]

HIPPO_FULL = "20261124-090000F"


@pytest.fixture(autouse=True)
def dispatched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Operation ids sent to Celery. Only end-to-end tests talk to a real worker."""
    sent: list[str] = []
    if request.node.get_closest_marker("e2e") is None:
        from restores import tasks
        from restores.services import dispatch

        def send(task: str, *args: object) -> None:
            # what a request sends: an operation's id, or the name of the task
            sent.append(str(args[0]) if task == dispatch.ADVANCE else task)

        monkeypatch.setattr(dispatch, "send", send)
        monkeypatch.setattr(tasks.advance_operation, "delay", sent.append)
        monkeypatch.setattr(
            tasks.advance_operation, "apply_async", lambda args, **kw: sent.append(args[0])
        )
        for task in (tasks.sync_cluster, tasks.backup_databases_fetch):
            monkeypatch.setattr(task, "delay", lambda *a, name=task.name: sent.append(name))
    return sent


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    platforms.override("local", platform)
    yield platform
    platforms.override("local", None)


@pytest.fixture
def hippo_row(fake: FakePlatform) -> Cluster:
    """The console's row for hippo on the fake local platform, with one full backup
    (HIPPO_FULL), read in by an inventory sync."""
    fake.add("hippo", backups=[make_backup(HIPPO_FULL, stop=T0)])
    inventory.platform_sync(platform_name="local")
    return Cluster.objects.get(name="hippo")


@pytest.fixture
def hippo_databases(hippo_row: Cluster) -> Cluster:
    """hippo_row whose full backup lists its databases (hippo, reporting), as the worker
    records them after a backup: what a single-database restore checks against."""
    Backup.objects.filter(label=HIPPO_FULL).update(databases=["hippo", "reporting"])
    return hippo_row


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    from tests import hypothesis_counts

    total = sum(hypothesis_counts.examples.values())
    if total:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(hypothesis_counts.examples.items()))
        terminalreporter.write_line(f"hostile-input requests (hypothesis): {total} ({parts})")
