"""Shutting a cluster down and starting it: the typed name, the stale page, a platform that
cannot, and a former primary that must not start while its promoted standby writes; on the fake
platform, then on Kubernetes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.html import escape

from restores import inventory
from restores.models import Cluster, Operation
from restores.platforms.base import FORMER_PRIMARY, ClusterRef, PermanentError
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion, standbys
from restores.services.errors import ServiceError
from tests.factories import user_with_role
from tests.fakes import FakePlatform
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.worker import messages, run_step, run_until_done

pytestmark = pytest.mark.django_db
Status = Operation.Status


def test_a_cluster_shuts_down_refuses_a_second_shutdown_and_starts_again(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "succeeded" and op.kind == "shutdown"
    hippo_row.refresh_from_db()
    assert hippo_row.role == "shutdown"
    with pytest.raises(ServiceError) as err:
        power.power_request(cluster=hippo_row, shutdown=True, user=None, confirm="hippo")
    assert err.value.message == power.ALREADY_SHUT_DOWN.format(cluster="hippo")
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=False, user=None,
                                                   confirm="hippo"))
    hippo_row.refresh_from_db()
    assert op.status == "succeeded" and hippo_row.role == "primary"
    assert list(op.events.values_list("step", flat=True)) == ["requested", "running", "done"]


def test_a_platform_that_cannot_do_it_fails_the_operation_clearly(
    fake: FakePlatform, hippo_row: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restores.platforms.base import Platform

    monkeypatch.setattr(FakePlatform, "power_advance", Platform.power_advance)
    op = run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                                   confirm="hippo"))
    assert op.status == "failed"
    assert op.error_reason == "The local platform cannot shut down or start clusters."


@pytest.mark.parametrize("typed", ["hippo ", " hippo", "Hippo", "hipp", "", "hippo\n"])
def test_a_typed_name_must_match_exactly(hippo_row: Cluster, typed: str) -> None:
    for request in (
        lambda: inplace.restore_in_place_request(cluster=hippo_row, repo_name="repo1",
                                                     point=RestoreTarget(), user=None,
                                                     confirm=typed),
        lambda: power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                          confirm=typed),
    ):
        with pytest.raises(ServiceError) as refused:
            request()
        assert refused.value.field == "confirm"
    assert not Operation.objects.exists()


def test_starting_a_former_primary_is_refused_while_its_promoted_standby_writes(
    fake: FakePlatform, hippo_row: Cluster, promoted_standby: Cluster
) -> None:
    with pytest.raises(ServiceError) as refused:
        power.power_request(cluster=hippo_row, shutdown=False, user=None, confirm="hippo")
    assert refused.value.message == power.FORMER_PRIMARY.format(cluster="hippo",
                                                                      promoted="hippo-sb")
    assert refused.value.field == "acknowledge"
    op = power.power_request(cluster=hippo_row, shutdown=False, user=None, confirm="hippo",
                                   acknowledge_split_brain=True)
    assert op.params == {"acknowledge_split_brain": True}
    assert "Acknowledged: hippo-sb was promoted from it" in op.events.get().message
    run_step(op)
    assert fake.power_calls[-1] == ("hippo", False, True)  # the platform is told too


def test_a_primary_with_no_promoted_successor_starts_without_questions(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    run_step(power.power_request(cluster=hippo_row, shutdown=True, user=None, confirm="hippo"))
    inventory.platform_sync(platform_name="local")
    hippo_row.refresh_from_db()
    op = power.power_request(cluster=hippo_row, shutdown=False, user=None, confirm="hippo")
    assert op.params == {"acknowledge_split_brain": False}


def test_a_stale_page_cannot_shut_down_a_cluster_already_down_or_restore_a_standby(
    hippo_row: Cluster
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(hippo_row.get_absolute_url()).content.decode()
    assert 'id="shutdown-link"' in page  # what the page offered when it loaded
    Cluster.objects.filter(pk=hippo_row.pk).update(role=Cluster.Role.SHUTDOWN)
    r = client.post(hippo_row.get_absolute_url() + "shutdown/", {"confirm": "hippo"})
    assert r.status_code == 422
    assert power.ALREADY_SHUT_DOWN.format(cluster="hippo") in r.content.decode()
    Cluster.objects.filter(pk=hippo_row.pk).update(role=Cluster.Role.STANDBY)
    r = client.post(hippo_row.get_absolute_url() + "restore/",
                    {"kind": "latest", "confirm": "hippo", "safety_backup": "on"})
    assert r.status_code == 422
    assert escape(inplace.RESTORE_ON_STANDBY.format(cluster="hippo")) in r.content.decode()
    Cluster.objects.filter(pk=hippo_row.pk).update(present=False)
    r = client.post(hippo_row.get_absolute_url() + "backup/", {"repo": "repo1",
                                                           "backup_type": "full"})
    assert r.status_code == 422
    assert not Operation.objects.exists()


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


@pytest.fixture
def primary(console: Console, kube_api, hippo_manifest) -> Cluster:  # type: ignore[no-untyped-def]
    kube_api.create_cluster(NS, hippo_manifest(backups={"pgbackrest": {"repos": [S3_REPO]}}))
    console.emu.settle()
    assert console.sync().errors == []
    return console.cluster("hippo")


def test_a_former_primary_does_not_start_while_its_promoted_standby_runs(
    console: Console, primary: Cluster
) -> None:
    made = console.run(standbys.standby_request(source=primary, name="hippo-sb",
                                                   namespace=NS, user=None, repo_name="repo1"))
    assert made.status == Status.SUCCEEDED, messages(made)
    down = console.run(power.power_request(cluster=primary, shutdown=True, user=None,
                                                 confirm="hippo"))
    assert down.status == Status.SUCCEEDED, messages(down)
    standby = console.cluster("hippo-sb")
    assert console.run(promotion.promote_request(cluster=standby, confirm="hippo-sb",
                                                   user=None)).status == Status.SUCCEEDED
    console.sync()
    primary.refresh_from_db()
    with pytest.raises(ServiceError) as refused:
        power.power_request(cluster=primary, shutdown=False, user=None, confirm="hippo")
    assert refused.value.message == power.FORMER_PRIMARY.format(cluster="hippo",
                                                                      promoted="hippo-sb")
    # The platform refuses on its own too (a start that did not come through the service).
    with pytest.raises(PermanentError) as platform_refused:
        console.platform.power_advance(ClusterRef(NS, "hippo"), operation_id="op-start",
                                       shutdown=False)
    assert platform_refused.value.message == FORMER_PRIMARY.format(cluster="hippo",
                                                                   promoted=f"{NS}/hippo-sb")
    assert console.obj("hippo")["spec"]["shutdown"] is True
    started = console.run(power.power_request(cluster=primary, shutdown=False, user=None,
                                                    confirm="hippo",
                                                    acknowledge_split_brain=True))
    assert started.status == Status.SUCCEEDED, messages(started)
    assert console.obj("hippo")["spec"]["shutdown"] is False
