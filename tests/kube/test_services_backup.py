"""The console's services on Kubernetes, end to end: the inventory sync and manual backups
through `services` and `loop.advance`, over the real `kubernetes` client, the test API
server and the PGO emulator; and the API's failure modes as an operation lives through them
(conflicts, server errors, timeouts, an annotation PGO never consumes, a worker killed
between the patch and the status).

"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from restores.models import Backup, Cluster, Operation, OperationEvent
from restores.platforms.pgbackrest import OPERATION_ANNOTATION
from restores.services import backups, errors
from restores.steps import backups as backup_steps
from tests.actions import request_backup
from tests.kube.emulator import BACKUP_ANN, RESTORE_ANN
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db

Status = Operation.Status


# -- the inventory --------------------------------------------------------------------------


def test_the_inventory_sync_fills_the_fleet_from_the_api(console: Console, kube_api, hippo_manifest,
                                                          dispatched) -> None:  # type: ignore[no-untyped-def]
    emu = console.emu
    kube_api.create_cluster(NS, hippo_manifest())
    kube_api.create_cluster(NS, hippo_manifest("sb", backups={"pgbackrest": {"repos": [S3_REPO]}},
                                      standby={"enabled": True, "repoName": "repo1"}))
    kube_api.create_cluster(NS, hippo_manifest("stopped"))
    emu.settle()
    kube_api.patch_cluster(NS, "stopped", {"spec": {"shutdown": True}})
    emu.settle()
    emu.deferred.add("fresh")  # PGO has not got to it yet
    kube_api.create_cluster(NS, hippo_manifest("fresh"))

    result = console.sync()

    fleet = {c.name: (c.role, c.state) for c in Cluster.objects.filter(platform="kubernetes")}
    assert fleet == {
        "hippo": ("primary", "ready"),
        "sb": ("standby", "standby"),
        "stopped": ("shutdown", "stopped"),
        "fresh": ("unknown", "bootstrapping"),
    }
    assert result.clusters == 4
    # No running leader to ask pgBackRest: reported, not fatal.
    assert sorted(e.split(":")[0] for e in result.errors) == ["db/fresh", "db/stopped"]
    hippo_row = console.cluster("hippo")
    assert hippo_row.pg_version == "16" and hippo_row.present
    assert hippo_row.connect_hint.startswith("kubectl -n db exec -it -c database")
    [repo] = hippo_row.repositories.all()
    assert (repo.name, repo.kind, repo.status_code) == ("repo1", "posix", 0)
    # The replica-create backup PGO took, as `pgbackrest info` (exec'd in the leader) lists it.
    [taken] = emu.backups[(NS, "hippo")]
    [backup] = repo.backups.all()
    assert (backup.label, backup.type) == (taken["label"], "full")
    assert repo.earliest_recovery is not None and repo.latest_recovery > repo.earliest_recovery
    execs = [r for r in console.server.requests if r.resource == "pods/exec"]
    assert execs and {r.namespace for r in execs} == {NS}

    # Deleted on the server: kept for its history, marked absent.
    kube_api.delete_cluster(NS, "fresh")
    console.sync()
    assert console.cluster("fresh").present is False
    assert dispatched == []


# -- manual backups -------------------------------------------------------------------------


def test_a_manual_backup_runs_through_the_services_and_is_listed(console: Console,
                                                                 hippo_synced: Cluster) -> None:
    patches = console.patches()
    op = backups.backup_request(cluster=hippo_synced, repo_name="repo1", backup_type="incr",
                                 user=None)
    trigger = op.refs["trigger"]
    op = run_step(op)
    assert (op.status, op.step) == (Status.RUNNING, "backing_up")
    started = op.events.get(step="backing_up", command__startswith="kubectl")
    assert f"annotation {BACKUP_ANN}={trigger}" in started.message
    assert "--type=merge --field-manager=dr-console" in started.command
    obj = console.obj("hippo")
    assert obj["metadata"]["annotations"][BACKUP_ANN] == trigger
    assert obj["spec"]["backups"]["pgbackrest"]["manual"]["options"] == [
        "--type=incr", f"--annotation={OPERATION_ANNOTATION}={trigger}"]

    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    label = op.result["label"]
    assert label.endswith("I") and op.result["type"] == "incr"
    backup = Backup.objects.get(repository__cluster=hippo_synced, label=label)
    assert backup.type == "incr"
    assert backup.annotations == {OPERATION_ANNOTATION: trigger}
    assert "PGO's backup Job is running." in messages(op)
    assert console.triggers(BACKUP_ANN) == [trigger]
    assert console.patches() == patches + 1
    # A step delivered again after the end changes nothing.
    version = op.version
    assert run_step(op).version == version


def test_a_backup_of_a_standby_is_refused(console: Console, kube_api, hippo_manifest) -> None:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest("sb", backups={"pgbackrest": {"repos": [S3_REPO]}},
                                      standby={"enabled": True, "repoName": "repo1"}))
    console.emu.settle()
    console.sync()
    standby = console.cluster("sb")
    assert standby.role == Cluster.Role.STANDBY
    with pytest.raises(errors.ServiceError) as refused:
        backups.backup_request(cluster=standby, repo_name="repo1", backup_type="full",
                                user=None)
    assert refused.value.message == backups.BACKUP_ON_STANDBY.format(cluster="sb")
    assert not Operation.objects.exists()

    # A stale row that still says primary: the platform refuses, the operation fails.
    Cluster.objects.filter(pk=standby.pk).update(role=Cluster.Role.PRIMARY)
    standby.refresh_from_db()
    op = console.run(backups.backup_request(cluster=standby, repo_name="repo1",
                                             backup_type="full", user=None))
    assert op.status == Status.FAILED
    assert op.error_reason.startswith("sb is a standby: PGO runs manual backups only on a "
                                      "writable primary")
    assert BACKUP_ANN not in (console.obj("sb")["metadata"].get("annotations") or {})


def test_a_failed_backup_job_fails_the_operation(console: Console,
                                                 hippo_synced: Cluster) -> None:
    console.emu.fail_backup.add("hippo")
    op = console.run(backups.backup_request(cluster=hippo_synced, repo_name="repo1",
                                             backup_type="full", user=None))
    assert op.status == Status.FAILED
    assert op.error_reason.startswith("The backup Job failed (1 failed pod(s)); see `kubectl "
                                      "-n db logs job/hippo-backup-")
    assert op.error_fix


# -- the API's failure modes, through the reconcile loop -----------------------------------


def test_a_conflicting_patch_is_read_again_and_sent_once(console: Console,
                                                         hippo_synced: Cluster) -> None:
    console.server.faults.error(409, verb="patch", resource="postgresclusters")
    patches = console.patches()
    op = run_step(request_backup(hippo_synced))
    assert op.status == Status.RUNNING and op.attempts == 0  # retried inside the step
    assert console.patches() == patches + 2
    op = console.run(op)
    assert op.status == Status.SUCCEEDED
    assert console.triggers(BACKUP_ANN) == [op.refs["trigger"]]


def test_a_server_error_is_retried_and_counted(console: Console,
                                               hippo_synced: Cluster) -> None:
    console.server.faults.error(500, verb="patch", resource="postgresclusters")
    op = run_step(request_backup(hippo_synced))
    assert (op.status, op.step, op.attempts) == (Status.PENDING, "requested", 1)
    retry = op.events.get(level=OperationEvent.Level.WARNING)
    assert retry.message.startswith("Retrying: The Kubernetes API failed to patch "
                                    "PostgresCluster db/hippo (HTTP 500)")
    assert op.next_check_at is not None
    assert op.next_check_at - timezone.now() > dt.timedelta(seconds=1)  # backed off
    op = run_step(op)
    assert (op.status, op.attempts) == (Status.RUNNING, 0)  # a success resets the count
    op = console.run(op)
    assert op.status == Status.SUCCEEDED
    assert console.triggers(BACKUP_ANN) == [op.refs["trigger"]]


def test_a_request_that_times_out_is_retried_without_a_second_trigger(
    console: Console, hippo_synced: Cluster
) -> None:
    """The server applies the patch after the client gave up (a slow API server): the
    retry finds the annotation already there and sends nothing more."""
    # An int: the client ignores a float _request_timeout (see the report on api.py).
    console.new_worker(timeout=1)
    console.server.faults.hang(1.5, verb="patch", resource="postgresclusters")
    op = run_step(request_backup(hippo_synced))
    assert (op.status, op.attempts) == (Status.PENDING, 1)
    assert "Retrying: The Kubernetes API did not answer" in messages(op)[-1]
    op = console.run(op)
    assert op.status == Status.SUCCEEDED, messages(op)
    assert console.triggers(BACKUP_ANN) == [op.refs["trigger"]]


def test_an_annotation_pgo_never_consumes_fails_as_stuck(console: Console,
                                                         hippo_synced: Cluster) -> None:
    console.settings.DR_KUBE_STUCK_AFTER = 2
    console.new_worker()
    console.emu.stuck.add("hippo")
    op = run_step(run_step(request_backup(hippo_synced)))
    assert op.status == Status.RUNNING
    assert messages(op)[-1] == ("Waiting for PGO to start the backup Job (PGO has not picked "
                                "up the annotation).")
    console.emu.settle()
    console.clock.offset += dt.timedelta(seconds=3)
    op = run_step(op)
    assert op.status == Status.FAILED
    # 3 s on the platform's clock, and up to one more: the stamp is kept in whole seconds.
    assert re.match(r"PGO has not started the backup after [34] s \(PGO has not picked up the "
                    r"annotation\)\. Fix: check that PGO is running and watching this "
                    r"namespace", op.error_reason), op.error_reason
    assert op.error_fix
    assert console.triggers(BACKUP_ANN) == [op.refs["trigger"]]


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the step catches it, as nothing catches SIGKILL."""


def test_a_worker_killed_after_the_patch_leaves_one_trigger(console: Console,
                                                            hippo_synced: Cluster,
                                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The worker dies after the API accepted the patch and before the operation recorded
    it. A new worker (a fresh platform instance: no cache, no memory) runs the step again:
    the annotation already holds the operation's value, so nothing is sent twice."""
    op = request_backup(hippo_synced)
    real = backup_steps.operation_transition

    def die(*args: Any, **kwargs: Any) -> bool:
        raise WorkerKilled

    monkeypatch.setattr(backup_steps, "operation_transition", die)
    patches = console.patches()
    with pytest.raises(WorkerKilled):
        run_step(op)
    op.refresh_from_db()
    assert (op.status, op.step) == (Status.PENDING, "requested")  # nothing recorded
    assert console.obj("hippo")["metadata"]["annotations"][BACKUP_ANN] == op.refs["trigger"]
    assert console.patches() == patches + 1

    monkeypatch.setattr(backup_steps, "operation_transition", real)
    Operation.objects.filter(pk=op.pk).update(lease_until=None)  # the dead worker's lease ran out
    console.new_worker()
    op = run_step(op)
    assert op.status == Status.RUNNING
    assert messages(op)[-1].startswith("PGO was already asked for this backup of hippo")
    op = console.run(op)
    assert op.status == Status.SUCCEEDED
    assert console.patches() == patches + 1
    assert console.triggers(BACKUP_ANN) == [op.refs["trigger"]]
    assert console.triggers(RESTORE_ANN) == []
