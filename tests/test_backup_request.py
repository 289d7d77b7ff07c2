"""backups.backup_request: the rules of a manual backup."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from restores.models import Operation, OperationEvent
from restores.services import backups, errors, operations
from tests.factories import BackupFactory, ClusterFactory, RepositoryFactory, user_with_role

pytestmark = pytest.mark.django_db


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
