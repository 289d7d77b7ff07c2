"""Manual backups: what the service refuses, one backup at a time; then on Kubernetes, through the
real client, the test API server and the PGO emulator, with the API's failure modes as an
operation lives through them (conflicts, server errors, timeouts, an annotation PGO never
consumes, a worker killed between the patch and the status)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from restores.models import Backup, Cluster, Operation, OperationEvent
from restores.platforms.pgbackrest import OPERATION_ANNOTATION
from restores.services import backups, errors, operations
from restores.steps import backups as backup_steps
from tests.actions import request_backup
from tests.factories import BackupFactory, ClusterFactory, RepositoryFactory, user_with_role
from tests.kube.emulator import BACKUP_ANN, RESTORE_ANN
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db
Status = Operation.Status


def _repo(**cluster_kwargs: object):  # type: ignore[no-untyped-def]
    repo = RepositoryFactory(cluster=ClusterFactory(**cluster_kwargs))
    BackupFactory(repository=repo)
    return repo


def test_it_creates_a_pending_operation_and_dispatches_it_on_commit(
    django_capture_on_commit_callbacks, dispatched  # type: ignore[no-untyped-def]
) -> None:
    repo = _repo(name="hippo")
    user = user_with_role("operator1", "operator")
    with django_capture_on_commit_callbacks(execute=True):
        op = backups.backup_request(
            cluster=repo.cluster, repo_name="repo1", backup_type="incr", user=user
        )
    assert op.status == Operation.Status.PENDING
    assert op.params == {"repo": "repo1", "type": "incr"}
    assert op.requested_by == user
    assert Operation.objects.get(pk=op.pk).refs["trigger"] == str(op.id)
    assert dispatched == [str(op.id)]
    assert list(op.events.values_list("step", flat=True)) == ["requested"]


@pytest.mark.parametrize(
    ("kwargs", "cluster_kwargs", "message", "field"),
    [
        ({"backup_type": "weekly"}, {}, backups.BACKUP_TYPE_UNKNOWN, "backup_type"),
        ({"repo_name": "repo9"}, {"name": "hippo"}, "hippo has no repo named repo9.", "repo"),
        ({}, {"name": "hs", "role": "standby"}, backups.BACKUP_ON_STANDBY.format(cluster="hs"),
         None),
        ({}, {"name": "off", "role": "shutdown"},
         backups.BACKUP_ON_SHUTDOWN.format(cluster="off"), None),
        ({}, {"name": "gone", "present": False}, backups.CLUSTER_GONE.format(cluster="gone"),
         None),
    ],
)
def test_it_refuses_what_cannot_be_backed_up(
    kwargs: dict[str, str], cluster_kwargs: dict[str, object], message: str, field: str | None
) -> None:
    repo = _repo(**cluster_kwargs)
    args = {"repo_name": "repo1", "backup_type": "full", **kwargs}
    with pytest.raises(errors.ServiceError) as err:
        backups.backup_request(cluster=repo.cluster, user=None, **args)
    assert err.value.message == message
    assert err.value.field == field
    assert not Operation.objects.exists()


def test_it_refuses_an_incremental_backup_without_a_full_one() -> None:
    repo = RepositoryFactory()
    with pytest.raises(errors.ServiceError) as err:
        backups.backup_request(cluster=repo.cluster, repo_name="repo1", backup_type="incr",
                                user=None)
    assert err.value.message == backups.BACKUP_NEEDS_FULL.format(repo="repo1", type="incr")
    # A full one is fine on an empty repo.
    backups.backup_request(cluster=repo.cluster, repo_name="repo1", backup_type="full",
                            user=None)


def test_it_refuses_a_second_backup_while_one_runs() -> None:
    repo = _repo(name="hippo")
    backups.backup_request(cluster=repo.cluster, repo_name="repo1", backup_type="full", user=None)
    with pytest.raises(errors.ServiceError) as err:
        backups.backup_request(cluster=repo.cluster, repo_name="repo1", backup_type="incr",
                                user=None)
    assert err.value.message == operations.CLUSTER_BUSY.format(
        cluster="hippo", kind="backup", status="pending"
    )
    assert Operation.objects.count() == 1
    assert OperationEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_lets_only_one_of_two_concurrent_requests_through() -> None:
    """Two requests race past the service's check; the partial unique constraint decides."""
    repo = _repo(name="hippo")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    real_active = backups.active_operation
    waited = threading.local()

    def racing_check(cluster):  # type: ignore[no-untyped-def]
        found = real_active(cluster)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(timeout=10)  # both requests have checked before either inserts
        return found

    def submit() -> None:
        try:
            backups.backup_request(cluster=repo.cluster, repo_name="repo1", backup_type="full",
                                    user=None)
            outcomes.append("created")
        except errors.ServiceError as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    backups.active_operation = racing_check  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        backups.active_operation = real_active  # type: ignore[assignment]
    assert sorted(outcomes)[0] == "created"
    assert outcomes.count("created") == 1
    assert any(o.startswith("hippo already has an operation in progress") for o in outcomes)
    assert Operation.objects.filter(cluster=repo.cluster).count() == 1


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
