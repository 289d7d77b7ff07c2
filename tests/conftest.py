from __future__ import annotations

from collections.abc import Iterator

import pytest

from restores import inventory, platforms
from restores.models import Backup, Cluster
from restores.services import power, promotion, standbys
from tests.factories import (
    HIPPO_FULL,
    T0,
    BackupFactory,
    ClusterFactory,
    OperationFactory,
    RepositoryFactory,
    user_with_role,
)
from tests.fakes import FakePlatform, make_backup
from tests.worker import run_step

# The test Kubernetes (API server, PGO emulator, the platform and the console on it).
pytest_plugins = ["tests.kube.fixtures"]



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


@pytest.fixture
def promoted_standby(fake: FakePlatform, hippo_row: Cluster) -> Cluster:
    """hippo shut down, its standby hippo-sb promoted: the console's own history of it."""
    op = standbys.standby_request(source=hippo_row, name="hippo-sb", namespace="local", user=None)
    for _ in range(3):
        op = run_step(op)
    standby = Cluster.objects.get(name="hippo-sb")
    down = power.power_request(cluster=hippo_row, shutdown=True, user=None, confirm="hippo")
    run_step(down)
    promoting = promotion.promote_request(cluster=standby, confirm="hippo-sb", user=None)
    assert run_step(promoting).status == "succeeded"
    inventory.platform_sync(platform_name="local")
    hippo_row.refresh_from_db()
    assert hippo_row.role == "shutdown"
    return Cluster.objects.get(name="hippo-sb")


@pytest.fixture
def two_teams(fake: FakePlatform) -> dict[str, object]:
    """payments/pay-db and search/search-db, each with a backup and a finished drill."""
    made = {}
    for team, name in (("payments", "pay-db"), ("search", "search-db")):
        fake.add(name)
        cluster = ClusterFactory(namespace=team, name=name)
        repo = RepositoryFactory(cluster=cluster)
        BackupFactory(repository=repo)
        OperationFactory(cluster=cluster, kind="drill", exclusive=False, status="succeeded",
                         params={"repo": "repo1", "point": {"kind": "latest"}})
        made[team] = cluster
    return made


@pytest.fixture
def two_person_rule(settings) -> None:  # type: ignore[no-untyped-def]
    """Every operation on the local platform waits for a second admin."""
    settings.DR_TWO_PERSON_RULE = ["local/*"]


@pytest.fixture
def alice(db):  # type: ignore[no-untyped-def]
    """An admin of every cluster."""
    return user_with_role("alice", "admin")


@pytest.fixture
def bob(db):  # type: ignore[no-untyped-def]
    """Another admin of every cluster."""
    return user_with_role("bob", "admin")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    from tests import hypothesis_counts

    total = sum(hypothesis_counts.examples.values())
    if total:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(hypothesis_counts.examples.items()))
        terminalreporter.write_line(f"hostile-input requests (hypothesis): {total} ({parts})")
