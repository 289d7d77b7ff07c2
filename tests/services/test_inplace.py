"""The in-place restore service: what it refuses before anything is touched (the typed name, an
unreachable point, a database not in the set, a standby); and the whole restore on Kubernetes."""

from __future__ import annotations

import datetime as dt

import pytest

from restores import tasks
from restores.models import Backup, Cluster, Operation
from restores.platforms.base import TransientError
from restores.platforms.targets import RestoreTarget
from restores.services import inplace
from restores.services.errors import ServiceError
from restores.steps import common
from restores.steps import inplace as inplace_steps
from tests.actions import request_in_place_restore
from tests.factories import HIPPO_FULL
from tests.fakes import T0, FakePlatform
from tests.kube.emulator import BACKUP_ANN, RESTORE_ANN
from tests.kube.fixtures import NS, S3_REPO, Console, reachable_time
from tests.worker import messages, run_step, run_until_done

pytestmark = pytest.mark.django_db
Status = Operation.Status


def test_in_place_restore_needs_a_typed_confirmation_and_a_reachable_point(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                             user=None, confirm="hipo")
    assert err.value.field == "confirm"
    late = RestoreTarget(kind="time", time=T0 + dt.timedelta(hours=5))
    with pytest.raises(ServiceError) as err:
        inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=late,
                                             user=None, confirm="hippo")
    assert err.value.message.startswith("2026-11-24 14:00:00 UTC is after the last archived WAL")
    Backup.objects.filter(repository__cluster=hippo_row).update(databases=["app", "reporting"])
    fake.databases = {"20261124-090000F": ["app", "reporting"]}
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", db_include=("app",),
                                              safety_backup=False)
    assert op.kind == "restore_database"
    op = run_step(op, times=3)
    assert op.status == "running"
    fake.in_place[op.refs["trigger"]] = "succeeded"
    assert run_until_done(op).status == "succeeded"


def test_an_in_place_restore_whose_repos_cannot_be_read_checks_the_stored_window(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    """A shut-down PGO cluster has no pod to ask: the window of the last sync is the check."""
    point = RestoreTarget(kind="time", time=T0 + dt.timedelta(minutes=10))
    op = inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1", point=point,
                                              user=None, confirm="hippo", safety_backup=False)
    fake.repos_fail.append(TransientError("no running leader pod to ask"))
    op = run_step(op)
    assert op.status == "running"
    assert fake.in_place == {op.refs["trigger"]: "running"}
    assert fake.repos_fail == []


def test_a_database_not_in_the_set_is_refused_by_the_service(hippo_databases: Cluster) -> None:
    with pytest.raises(ServiceError) as refused:
        request_in_place_restore(hippo_databases, db_include=("hipo",))
    assert refused.value.field == "db_include"
    assert refused.value.message == inplace.DB_NOT_IN_SET.format(
        name="hipo", label=HIPPO_FULL, known="hippo, reporting")
    Backup.objects.update(databases=None)
    with pytest.raises(ServiceError) as unread:
        request_in_place_restore(hippo_databases, db_include=("hippo",))
    assert unread.value.message == inplace.DB_SET_UNREAD.format(label=HIPPO_FULL)
    assert not Operation.objects.exists()


def read_databases(cluster: Cluster) -> None:
    """What the restore form asks for first: the databases of the newest backup set."""
    for backup in Backup.objects.filter(repository__cluster=cluster, databases__isnull=True):
        tasks.backup_databases_fetch(backup.pk)


def restore_section(console: Console, name: str = "hippo") -> dict:
    return console.obj(name)["spec"]["backups"]["pgbackrest"]["restore"]


def test_an_in_place_pitr_restores_and_disables_the_restore(console: Console,
                                                            hippo_synced: Cluster) -> None:
    when = reachable_time(hippo_synced)
    op = request_in_place_restore(hippo_synced, RestoreTarget(kind="time", time=when),
                                  safety_backup=False)
    assert op.kind == Operation.Kind.RESTORE_IN_PLACE
    trigger = op.refs["trigger"]
    op = run_step(op)  # started, and the restore asked for in the same step
    assert op.status == Status.RUNNING
    assert messages(op)[-1].startswith("Asked PGO to restore hippo in place (annotation "
                                       f"{RESTORE_ANN}={trigger}); it will go down.")
    assert restore_section(console)["enabled"] is True
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == "hippo was restored in place and is ready."
    assert "restore_seconds" in op.result
    assert any(m.startswith("Restoring: ") for m in messages(op))
    assert restore_section(console) == {
        "enabled": False, "repoName": "repo1",
        "options": ["--type=time", f'--target="{when:%Y-%m-%d %H:%M:%S}+00"']}
    obj = console.obj("hippo")
    assert obj["status"]["pgbackrest"]["restore"]["id"] == trigger
    assert obj["metadata"]["annotations"][RESTORE_ANN] == trigger
    assert console.triggers(RESTORE_ANN) == [trigger]  # exactly one value ever sent
    hippo_synced.refresh_from_db()
    assert (hippo_synced.role, hippo_synced.state) == ("primary", "ready")


def test_a_single_database_restore_finishes_once_after_a_worker_is_lost(
    console: Console, hippo_synced: Cluster
) -> None:
    """Killed between "patch sent" and "status seen": a new worker (a fresh platform, same
    server) carries on; PGO saw one annotation value for the operation."""
    read_databases(hippo_synced)
    op = request_in_place_restore(hippo_synced, db_include=("app",), safety_backup=False)
    assert op.kind == Operation.Kind.RESTORE_DATABASE
    patches = console.patches()
    op = run_step(op)  # started: the patch is sent in the same step
    assert console.patches() == patches + 1
    console.new_worker()
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    assert restore_section(console) == {"enabled": False, "repoName": "repo1",
                                        "options": ["--db-include=app"]}
    assert console.triggers(RESTORE_ANN) == [op.refs["trigger"]]
    assert console.patches() == patches + 2  # the restore, then restore.enabled=false


def test_a_failed_in_place_restore_fails_the_operation(console: Console,
                                                       hippo_synced: Cluster) -> None:
    console.emu.fail_restore.add("hippo")
    op = console.run(request_in_place_restore(hippo_synced, safety_backup=False))
    assert op.status == Status.FAILED
    assert "The restore Job hippo-pgbackrest-restore failed" in op.error_reason
    assert "kubectl -n db logs job/hippo-pgbackrest-restore" in op.error_reason
    assert op.error_fix == common.ADVANCE_FAILED_FIX[Operation.Kind.RESTORE_IN_PLACE]


def test_an_in_place_restore_pgo_never_starts_fails_as_stuck(console: Console,
                                                             hippo_synced: Cluster) -> None:
    console.settings.DR_KUBE_STUCK_AFTER = 2
    console.new_worker()
    console.emu.stuck.add("hippo")
    op = run_step(request_in_place_restore(hippo_synced, safety_backup=False), times=2)
    console.emu.settle()
    assert run_step(op).status == Status.RUNNING
    assert messages(op)[-1] == "Waiting for PGO to start the in-place restore."
    console.clock.offset += dt.timedelta(seconds=5)
    op = run_step(op)
    assert op.status == Status.FAILED
    assert op.error_reason.startswith("PGO has not started the in-place restore after")
    assert "Fix: check that PGO is running and watches db" in op.error_reason
    assert console.triggers(RESTORE_ANN) == [op.refs["trigger"]]


def test_restoring_a_standby_in_place_is_refused(console: Console, kube_api,  # type: ignore[no-untyped-def]
                                                 hippo_manifest) -> None:
    kube_api.create_cluster(NS, hippo_manifest("sb", backups={"pgbackrest": {"repos": [S3_REPO]}},
                                      standby={"enabled": True, "repoName": "repo1"}))
    console.emu.settle()
    console.sync()
    with pytest.raises(ServiceError) as refused:
        request_in_place_restore(console.cluster("sb"), safety_backup=False)
    assert refused.value.message == inplace.RESTORE_ON_STANDBY.format(cluster="sb")


def test_an_in_place_restore_first_takes_a_pgo_backup_then_restores(
    console: Console, hippo_synced: Cluster
) -> None:
    op = inplace.restore_in_place_request(
        cluster=hippo_synced, repo_name="repo1", point=RestoreTarget(), user=None,
        confirm="hippo")
    trigger = op.refs["trigger"]
    op = run_step(op)
    assert (op.status, op.step) == (Status.RUNNING, "safety_backup")
    assert console.triggers(BACKUP_ANN) == [trigger + inplace_steps.SAFETY_SUFFIX]
    assert console.triggers(RESTORE_ANN) == []  # nothing restored while it backs up
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    label = op.refs["safety_backup"]
    assert label and op.result["safety_backup"] == label
    assert console.triggers(RESTORE_ANN) == [trigger]
    assert any(m.startswith(f"Backup {label} of the state before this restore is in repo1")
               for m in messages(op))
