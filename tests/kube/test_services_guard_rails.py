"""The guard rails on Kubernetes, end to end through the services, the real client, the test
API server and the PGO emulator: the backup of the current state before an in-place restore,
the honest "old primary is gone" override, and no start of a former primary whose promoted
standby writes."""

from __future__ import annotations

import pytest

from restores.models import Cluster, Operation
from restores.platforms.base import FORMER_PRIMARY, ClusterRef, PermanentError
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion, standbys
from restores.services.errors import ServiceError
from restores.steps import inplace as inplace_steps
from tests.kube.emulator import BACKUP_ANN, RESTORE_ANN
from tests.kube.fixtures import NS, S3_REPO, Console
from tests.worker import messages, run_step

pytestmark = pytest.mark.django_db

Status = Operation.Status
STANDBY_OF = "dr-console/standby-of"


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
