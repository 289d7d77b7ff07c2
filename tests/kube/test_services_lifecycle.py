"""Operations on existing PGO clusters through the console's services, end to end: in-place
PITR and single-database restore, shutdown and start, standby creation and promotion (with
the split-brain guard), over the real client, the test API server and the PGO emulator."""

from __future__ import annotations

import datetime as dt

import pytest

from restores import tasks
from restores.models import Backup, Cluster, Operation
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion, standbys
from restores.services.errors import ServiceError
from restores.steps import common
from tests.actions import request_in_place_restore
from tests.kube.emulator import RESTORE_ANN
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.kube.test_services_clone import reachable_time
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db


Status = Operation.Status
STANDBY_OF = "dr-console/standby-of"


def read_databases(cluster: Cluster) -> None:
    """What the restore form asks for first: the databases of the newest backup set."""
    for backup in Backup.objects.filter(repository__cluster=cluster, databases__isnull=True):
        tasks.backup_databases_fetch(backup.pk)


def restore_section(console: Console, name: str = "hippo") -> dict:
    return console.obj(name)["spec"]["backups"]["pgbackrest"]["restore"]


# -- in-place restore -----------------------------------------------------------------------


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


def test_a_single_database_restore_after_a_worker_is_lost(console: Console,
                                                          hippo_synced: Cluster) -> None:
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


# -- shutdown and start ---------------------------------------------------------------------


def test_shutdown_and_start_are_verified(console: Console, hippo_synced: Cluster) -> None:
    # A worker that never read hippo's repos: after the shutdown it has no pod to ask.
    console.new_worker()
    op = console.run(power.power_request(cluster=hippo_synced, shutdown=True, user=None,
                                               confirm=hippo_synced.name))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == "hippo is shut down: every workload PGO runs for it is at zero."
    assert console.obj("hippo")["spec"]["shutdown"] is True
    assert console.server.store.list("pods", NS, label_selector=(
        "postgres-operator.crunchydata.com/cluster=hippo,"
        "postgres-operator.crunchydata.com/instance")) == []
    hippo_synced.refresh_from_db()
    assert (hippo_synced.role, hippo_synced.state) == ("shutdown", "stopped")
    assert hippo_synced.repositories.get().backups.count() == 1  # kept from the last sync
    with pytest.raises(ServiceError, match="hippo is already shut down"):
        power.power_request(cluster=hippo_synced, shutdown=True, user=None,
                                  confirm=hippo_synced.name)

    op = console.run(power.power_request(cluster=hippo_synced, shutdown=False,
                                               user=None, confirm=hippo_synced.name))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == "hippo is running and ready."
    hippo_synced.refresh_from_db()
    assert (hippo_synced.role, hippo_synced.state) == ("primary", "ready")


# -- standby and promotion ------------------------------------------------------------------


@pytest.fixture
def primary(console: Console, kube_api, hippo_manifest) -> Cluster:  # type: ignore[no-untyped-def]
    """hippo with a cloud repo a standby can replay from, synced into the console."""
    kube_api.create_cluster(NS, hippo_manifest(backups={"pgbackrest": {"repos": [S3_REPO]}}))
    console.emu.settle()
    assert console.sync().errors == []
    return console.cluster("hippo")


def test_a_standby_is_created_and_promoted_only_once_the_primary_is_down(
    console: Console, primary: Cluster
) -> None:
    op = console.run(standbys.standby_request(source=primary, name="hippo-sb", namespace=NS,
                                                 user=None, repo_name="repo1"))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == "hippo-sb is a standby: its leader replays from db/hippo."
    obj = console.obj("hippo-sb")
    assert obj["spec"]["standby"] == {"enabled": True, "repoName": "repo1"}
    assert obj["metadata"]["annotations"][STANDBY_OF] == "db/hippo"
    standby = console.cluster("hippo-sb")
    assert (standby.role, standby.state) == ("standby", "standby")
    with pytest.raises(ServiceError, match="A cluster named hippo-sb already exists"):
        standbys.standby_request(source=primary, name="hippo-sb", namespace=NS, user=None)

    # The console's guard: hippo runs as a primary.
    with pytest.raises(ServiceError) as refused:
        promotion.promote_request(cluster=standby, confirm="hippo-sb", user=None)
    assert refused.value.message == promotion.SPLIT_BRAIN.format(primary="hippo",
                                                                   cluster="hippo-sb")
    # Told the primary is gone while the console sees it running: no override is offered
    # where the console can check (the platform's own guard: test_platform_lifecycle.py).
    with pytest.raises(ServiceError) as refused:
        promotion.promote_request(cluster=standby, confirm="hippo-sb", user=None,
                                    primary_gone=True)
    assert refused.value.message == promotion.OVERRIDE_NOT_OFFERED.format(
        cluster="hippo-sb", primary=" hippo")
    assert not promotion.promotion_override_offered(standby)
    assert console.obj("hippo-sb")["spec"]["standby"]["enabled"] is True

    down = console.run(power.power_request(cluster=primary, shutdown=True, user=None,
                                                 confirm=primary.name))
    assert down.status == Status.SUCCEEDED, messages(down)
    op = console.run(promotion.promote_request(cluster=standby, confirm="hippo-sb",
                                                 user=None))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert messages(op)[-1] == "hippo-sb was promoted: its leader reports role primary."
    assert console.obj("hippo-sb")["spec"]["standby"]["enabled"] is False
    standby.refresh_from_db()
    assert (standby.role, standby.state) == ("primary", "ready")
