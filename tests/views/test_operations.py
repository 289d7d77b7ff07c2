"""None"""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Cluster, Operation, Repository
from restores.models.transitions import Status, operation_transition
from tests.actions import request_shutdown
from tests.factories import ClusterFactory, OperationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def op(repo: Repository) -> Operation:
    return OperationFactory(cluster=repo.cluster)


def test_it_shows_the_steps_and_the_command(client: Client, op: Operation, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_POLL_INTERVAL, settings.DR_OPERATION_POLL_INTERVAL = 2, 1
    operation_transition(op, status=Status.RUNNING, step="backing_up", message="Started.",
                         command="pgbackrest --stanza=db --type=full backup")
    r = client.get(op.get_absolute_url())
    html = r.content.decode()
    assert r.status_code == 200
    assert "pgbackrest --stanza=db --type=full backup" in html
    # An operation in flight polls faster than the other pages: its steps are what the DBA
    # waits for (DR_OPERATION_POLL_INTERVAL).
    assert 'hx-trigger="every 1s"' in html
    assert 'data-status="running"' in html


def test_its_poll_is_204_until_the_operation_changes(client: Client, op: Operation, hx) -> None:  # type: ignore[no-untyped-def]
    url = op.get_absolute_url() + f"?v={op.version}"
    assert client.get(url, **hx).status_code == 204
    operation_transition(op, status=Status.RUNNING, step="backing_up", message="Started.")
    r = client.get(url, **hx)
    assert r.status_code == 200
    assert r.content.decode().lstrip().startswith('<section id="progress"')


def test_a_finished_operation_stops_polling_and_says_why_it_failed(
    client: Client, op: Operation
) -> None:
    operation_transition(op, status=Status.FAILED, step="failed", message="It broke.",
                         error_reason="[050] unable to acquire lock", error_fix="Wait.")
    html = client.get(op.get_absolute_url()).content.decode()
    assert "hx-trigger" not in html.split('id="progress"', 1)[1].split(">", 1)[0]
    assert "[050] unable to acquire lock" in html and "Wait." in html


def test_unknown_or_junk_ids_are_404(client: Client, op: Operation) -> None:
    assert client.get("/operations/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/operations/not-a-uuid/").status_code == 404


def test_a_finished_clone_shows_duration_size_and_throughput(client: Client,
                                                              repo: Repository) -> None:
    target = ClusterFactory(name="elephant")
    op = OperationFactory(cluster=target, kind="clone", params={
        "source": {"platform": "local", "namespace": "local", "name": "hippo"}, "repo": "repo1",
        "point": {"kind": "latest"}, "target": {"name": "elephant", "namespace": "local"}})
    operation_transition(op, status=Status.SUCCEEDED, step="done", message="Done.", result={
        "port": "55433", "restore_seconds": "1.6", "recovery_seconds": "1.0",
        "restored_bytes": "54542336", "throughput_mib_s": "33.3",
        "first_backup": "20261124-232830F", "dropped_databases": ""})
    html = client.get(op.get_absolute_url()).content.decode()
    assert "Clone of <a href=\"/clusters/local/local/hippo/\">hippo</a> into elephant" in html
    assert '<dd id="restore-seconds">1.6 s</dd>' in html
    assert '<dd id="restored-size">52.0 MiB</dd>' in html
    assert '<dd id="throughput">33.3 MiB/s</dd>' in html
    assert "20261124-232830F" in html


@pytest.mark.usefixtures("two_person_rule")
def test_the_operation_page_shows_the_request_and_the_approval(hippo_row: Cluster, alice,  # type: ignore[no-untyped-def]
                                                                bob) -> None:
    op = request_shutdown(hippo_row, alice)
    mine, theirs = Client(), Client()
    mine.force_login(alice)
    theirs.force_login(bob)
    page = mine.get(op.get_absolute_url()).content.decode()
    assert 'id="approval"' in page and 'id="approve-button"' not in page
    assert "Withdraw my request" in page
    page = theirs.get(op.get_absolute_url()).content.decode()
    assert 'id="approve-button"' in page
    assert mine.post(op.get_absolute_url() + "approve/").status_code == 422
    r = theirs.post(op.get_absolute_url() + "approve/")
    assert r.status_code == 302
    page = theirs.get(op.get_absolute_url()).content.decode()
    assert 'id="approved"' in page and "Approved by <strong>bob</strong>" in page
    assert "Waiting for a second admin" in page  # the event stays in the history
