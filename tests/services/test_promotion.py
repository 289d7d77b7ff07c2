"""Standbys and their promotion: the split-brain guard, and the override where the platform cannot
see the primary; on the fake platform, then on Kubernetes."""

from __future__ import annotations

import pytest
from django.test import Client

from restores import inventory
from restores.models import Cluster, Operation
from restores.services import power, promotion, standbys
from restores.services.errors import ServiceError
from tests.factories import user_with_role
from tests.fakes import FakePlatform
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.worker import messages, run_step, run_until_done

pytestmark = pytest.mark.django_db
Status = Operation.Status
STANDBY_OF = "dr-console/standby-of"


def test_the_split_brain_guard_holds_a_promotion_until_the_primary_is_shut_down(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = standbys.standby_request(source=hippo_row, name="hippo-standby", namespace="local",
                                     user=None)
    op = run_until_done(op)
    standby = Cluster.objects.get(name="hippo-standby")
    assert op.status == "succeeded" and standby.role == "standby"
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="hippo-standby", user=None)
    assert err.value.message == promotion.SPLIT_BRAIN.format(primary="hippo",
                                                               cluster="hippo-standby")
    run_until_done(power.power_request(cluster=hippo_row, shutdown=True, user=None,
                                              confirm="hippo"))
    with pytest.raises(ServiceError) as err:
        promotion.promote_request(cluster=standby, confirm="nope", user=None)
    assert err.value.field == "confirm"
    op = run_until_done(promotion.promote_request(cluster=standby, confirm="hippo-standby",
                                                     user=None))
    standby.refresh_from_db()
    assert op.status == "succeeded" and standby.role == "primary"


def _standby(fake: FakePlatform, name: str = "far-sb") -> Cluster:
    """A standby the console did not create: it has no record of its source."""
    fake.add(name, role="standby")
    inventory.platform_sync(platform_name="local")
    return Cluster.objects.get(name=name)


def test_where_the_platform_checks_the_source_no_override_is_offered(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    standby = _standby(fake)
    assert not promotion.promotion_override_offered(standby)
    with pytest.raises(ServiceError) as refused:
        promotion.promote_request(cluster=standby, confirm="far-sb", user=None,
                                    primary_gone=True)
    assert refused.value.field == "primary_gone"
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(standby.get_absolute_url() + "promote/").content.decode()
    assert 'name="primary_gone"' not in page
    assert "it checks the old primary itself before it promotes" in page


def test_where_it_cannot_the_override_is_required_offered_and_recorded(
    fake: FakePlatform, hippo_row: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakePlatform, "checks_standby_source", False)
    standby = _standby(fake)
    assert promotion.promotion_override_offered(standby)
    with pytest.raises(ServiceError) as refused:
        promotion.promote_request(cluster=standby, confirm="far-sb", user=None)
    assert refused.value.message == promotion.PRIMARY_UNSEEN.format(cluster="far-sb",
                                                                      primary="")
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(standby.get_absolute_url() + "promote/").content.decode()
    assert 'name="primary_gone"' in page and "Promotion is one way" in page
    r = client.post(standby.get_absolute_url() + "promote/",
                    {"confirm": "far-sb", "primary_gone": "on"})
    assert r.status_code == 302
    op = Operation.objects.get(kind="promote")
    assert op.params["primary_gone"] is True
    assert "acknowledged as gone for good by the requester" in op.events.get().message
    assert run_step(op).status == "succeeded"


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
    # where the console can check (the platform's own guard:
    # tests/platforms/kubernetes/test_lifecycle.py).
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


@pytest.fixture
def far_standby(console: Console, kube_api, hippo_manifest) -> Cluster:  # type: ignore[no-untyped-def]
    """A standby whose primary is in another Kubernetes cluster: made outside the console,
    no source the console or the platform can see."""
    kube_api.create_cluster(NS, hippo_manifest("far-sb",
                                               backups={"pgbackrest": {"repos": [S3_REPO]}},
                                      standby={"enabled": True, "repoName": "repo1"}))
    console.emu.settle()
    assert console.sync().errors == []
    return console.cluster("far-sb")


def test_an_unseen_primary_needs_the_acknowledgement_which_then_promotes(
    console: Console, far_standby: Cluster
) -> None:
    assert promotion.promotion_override_offered(far_standby)
    with pytest.raises(ServiceError) as refused:
        promotion.promote_request(cluster=far_standby, confirm="far-sb", user=None)
    assert refused.value.field == "primary_gone"
    op = console.run(promotion.promote_request(cluster=far_standby, confirm="far-sb",
                                                 user=None, primary_gone=True))
    assert op.status == Status.SUCCEEDED, messages(op)
    assert op.params["primary_gone"] is True
    assert console.obj("far-sb")["spec"]["standby"]["enabled"] is False
