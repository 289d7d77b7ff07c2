"""Integration tests of drills on the local platform, against real PostgreSQL and pgBackRest:
the scratch clone, verify and the owner-checked destroy, then a whole drill through the
service and the reconcile steps (each step run twice, half of them from a "new process").

One source cluster (`pika`, demo data, one full backup) serves the module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from restores import inventory, platforms
from restores.models import Cluster, Operation
from restores.platforms.base import CloneRequest, ClusterRef, PermanentError
from restores.platforms.local import LocalPlatform
from restores.platforms.targets import RestoreTarget
from restores.services import drills
from restores.steps import loop
from tests.platforms.local.helpers import flush_wal, run_clone

pytestmark = pytest.mark.integration

SOURCE = ClusterRef("local", "pika")


@pytest.fixture(scope="module")
def pika(local: LocalPlatform) -> Iterator[ClusterRef]:
    local.cluster_create(SOURCE.name)
    try:
        local.load_demo_data(SOURCE)
        full = local.backup_wait(SOURCE, repo="repo1", backup_type="full", operation_id="pika-full")
        assert full.state == "succeeded", full.message
        local.sql(SOURCE, "create table drill_marker (x int)", database="pika")
        local.sql(SOURCE, "insert into drill_marker values (42)", database="pika")
        flush_wal(local, SOURCE)
        yield SOURCE
    finally:
        for status in local.clusters():
            if status.ref.name.startswith("pika"):
                local.cluster_destroy(status.ref)


def repo_files(local: LocalPlatform, name: str) -> set[str]:
    repo = local.fleet_dir / "repos" / name
    return {str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()}


def scratch_files(root: Path, name: str) -> list[Path]:
    return [p for p in root.rglob(f"*{name}*")]


def test_a_scratch_clone_is_verified_and_deleted_without_writing_any_repo(
    local: LocalPlatform, pika: ClusterRef
) -> None:
    before = repo_files(local, "pika")
    scratch = ClusterRef("local", "pika-drill-aaaaaa")
    req = CloneRequest(operation_id="op-drill-a", source=pika, repo="repo1", target=scratch,
                       point=RestoreTarget(kind="latest"), scratch=True)
    plan = local.clone_plan(req)
    assert "first full backup" not in " ".join(plan.steps)
    assert "never writes to any" in plan.steps[-1]
    run = run_clone(local, req)
    assert run.last.state == "succeeded", f"{run.last.message}\n{run.last.detail}"
    assert run.last.result["scratch"] == "true" and run.last.result["first_backup"] == ""
    assert float(run.last.result["promoted_at"]) <= time.time()
    assert "archiving off" in run.last.message

    # A writable primary with the source's data, that archives nowhere and has no repo.
    status = local.cluster_status(scratch)
    assert (status.role, status.state) == ("primary", "ready")
    assert status.message.startswith("A drill's scratch copy of pika")
    assert local.sql(scratch, "select x from drill_marker", database="pika") == [(42,)]
    assert local.sql(scratch, "show archive_mode") == [("off",)]
    local.sql(scratch, "create table written_in_the_scratch (x int)")
    local.sql(scratch, "select pg_switch_wal()")
    assert local.repos(scratch) == []
    assert not (local.fleet_dir / "repos" / scratch.name).exists()

    found = local.verify(scratch, source=pika)
    assert found.system_identifier and found.system_identifier == found.source_system_identifier
    assert not found.in_recovery and found.server_version.split(".")[0].isdigit()
    by_name = {d.name: d for d in found.databases}
    assert {"pika", "postgres", "reporting"} <= set(by_name)
    assert by_name["pika"].user_tables >= 6 and by_name["pika"].size_bytes > 1_000_000
    assert by_name["postgres"].user_tables == 1  # written_in_the_scratch
    assert found.last_replayed_commit is not None

    # Only the operation that made it may delete it.
    with pytest.raises(PermanentError):
        local.cluster_destroy(scratch, operation_id="op-someone-else")
    with pytest.raises(PermanentError):
        local.cluster_destroy(pika, operation_id="op-drill-a")
    local.cluster_destroy(scratch, operation_id="op-drill-a")
    assert not local.cluster_exists(scratch)
    assert scratch_files(local.fleet_dir, scratch.name) == []
    again = local.cluster_destroy(scratch, operation_id="op-drill-a")
    assert again.summary == f"{scratch.name} is already deleted."

    # The source is untouched, and its repo holds nothing from the scratch's timeline 2.
    assert local.cluster_status(pika).role == "primary"
    after = repo_files(local, "pika")
    assert not [f for f in after - before if "/00000002" in f or f.endswith(".history")]


@pytest.mark.django_db
def test_a_drill_through_the_console_restores_verifies_and_deletes(
    local: LocalPlatform, pika: ClusterRef
) -> None:
    platforms.override("local", local)
    try:
        inventory.platform_sync(platform_name="local")
        cluster = Cluster.objects.get(name="pika")
        op = drills.drill_request(cluster=cluster, repo_name="repo1",
                                  point=RestoreTarget(kind="latest"), user=None)
        scratch = op.refs["scratch"]["name"]
        before = repo_files(local, "pika")
        fresh = LocalPlatform(fleet_dir=local.fleet_dir, run_as=local.run_as,
                              namespace=local.namespace, port_base=local.port_base)
        deadline = time.monotonic() + 180
        n = 0
        while not op.is_terminal:
            assert time.monotonic() < deadline, f"drill still {op.step}"
            # Every step twice, every other one from a "new process" (a fresh platform).
            platforms.override("local", fresh if n % 2 else local)
            for _ in range(2):
                Operation.objects.filter(pk=op.pk, status__in=Operation.ACTIVE).update(
                    next_check_at=timezone.now())
                loop.advance(str(op.id))
            op.refresh_from_db()
            n += 1
            time.sleep(0.2)
        assert op.status == "succeeded", f"{op.error_reason}\n{op.error_fix}"
        r = op.result
        assert 0 < r["rto_seconds"] < 180 and r["rpo_seconds"] >= 0
        assert r["restore_seconds"] > 0 and r["backup_set"].endswith("F")
        assert "pgbackrest" in r["command"] and "--archive-mode=off" in r["command"]
        assert all(c["ok"] for c in r["checks"]), r["checks"]
        assert [c["check"] for c in r["checks"]][:3] == ["accepts writes", "same system",
                                                         "databases"]
        assert r["scratch"] == scratch and r["destroyed_at"]
        assert not local.cluster_exists(ClusterRef("local", scratch))
        assert scratch_files(local.fleet_dir, scratch) == []
        assert not Cluster.objects.filter(name=scratch).exists()
        # Launched once, though every step ran twice.
        launched = op.events.filter(message__startswith="Started pgBackRest: restore")
        assert launched.count() == 1
        after = repo_files(local, "pika")
        assert not [f for f in after - before if "/00000002" in f or f.endswith(".history")]
        assert local.sql(pika, "select x from drill_marker", database="pika") == [(42,)]
        assert json.loads((local.fleet_dir / "clusters/pika/cluster.json").read_text())[
            "state"] == ""
    finally:
        platforms.override("local", None)
