"""The drill service: the scratch cluster's name, one drill per cluster, what it refuses; on the
fake platform, then against the Kubernetes API."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from restores import inventory, rules
from restores.models import Cluster, Operation
from restores.platforms.targets import RestoreTarget, target_to_json
from restores.services import backups, drills
from restores.services.errors import ServiceError
from tests.actions import request_drill
from tests.factories import ClusterFactory
from tests.fakes import T0, FakePlatform
from tests.kube.fixtures import NS, Console
from tests.worker import messages

pytestmark = pytest.mark.django_db


def test_it_names_the_scratch_cluster_before_anything_is_applied(hippo_row: Cluster,
                                                                  dispatched: list[str]) -> None:
    op = request_drill(hippo_row)
    name = f"hippo-drill-{op.id.hex[:6]}"
    assert op.kind == "drill" and op.exclusive is False and op.status == "pending"
    assert op.refs == {"trigger": str(op.id), "scratch": {"namespace": "local", "name": name}}
    assert op.params["point"] == target_to_json(RestoreTarget())  # the one stored form
    assert op.params["point"]["kind"] == "latest" and op.params["point"]["time"] == ""
    assert dt.datetime.fromisoformat(op.params["requested_at"]) <= timezone.now()
    assert op.events.get().message == (
        f"Drill of hippo from repo1 at latest requested: scratch cluster {name}.")


def test_the_scratch_name_fits_the_platforms_rules() -> None:
    op_id = uuid.UUID("3fa2c1d4-0000-4000-8000-000000000000")
    assert drills.scratch_name("hippo", op_id) == "hippo-drill-3fa2c1"
    long = drills.scratch_name("a" * 26 + "-" + "b" * 20, op_id)
    assert long == "a" * 26 + "-drill-3fa2c1" and len(long) <= drills.SCRATCH_NAME_MAX


def test_it_allows_one_drill_per_cluster_at_a_time(hippo_row: Cluster) -> None:
    request_drill(hippo_row)
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_ALREADY_RUNNING.format(cluster="hippo")


def test_a_backup_may_run_during_a_drill(hippo_row: Cluster) -> None:
    request_drill(hippo_row)
    backup = backups.backup_request(cluster=hippo_row, repo_name="repo1", backup_type="incr",
                                     user=None)
    assert backup.status == "pending"
    # ... and a drill may start while a backup runs.
    Operation.objects.filter(kind="drill").update(status="succeeded")
    assert request_drill(hippo_row).status == "pending"


def test_it_refuses_a_cluster_no_longer_present(hippo_row: Cluster) -> None:
    hippo_row.present = False
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_CLUSTER_GONE.format(cluster="hippo")


def test_it_refuses_a_repo_without_a_backup(fake: FakePlatform) -> None:
    fake.add("empty")
    inventory.platform_sync(platform_name="local")
    with pytest.raises(ServiceError) as err:
        request_drill(Cluster.objects.get(name="empty"))
    assert err.value.message == drills.DRILL_REPO_EMPTY.format(cluster="empty", repo="repo1")
    assert err.value.field == "repo"


def test_it_refuses_a_point_outside_the_window(hippo_row: Cluster) -> None:
    late = RestoreTarget(kind="time", time=T0 + dt.timedelta(hours=3))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, late)
    assert err.value.field == "time"
    assert err.value.message == rules.TIME_AFTER_WINDOW.format(
        when="2026-11-24 12:00:00 UTC", repo="repo1", latest="2026-11-24 10:00:00 UTC")
    early = RestoreTarget(kind="time", time=T0 - dt.timedelta(hours=1))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, early)
    assert "before the recoverable window" in err.value.message


def test_it_refuses_other_kinds_of_point(hippo_row: Cluster) -> None:
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row, RestoreTarget(kind="lsn", lsn="0/3000060"))
    assert err.value.message == drills.DRILL_POINT_KINDS


def test_it_refuses_a_platform_that_cannot_drill(hippo_row: Cluster, fake: FakePlatform,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "drills", False)
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.DRILL_NOT_ON_PLATFORM.format(platform="local",
                                                                    cluster="hippo")


def test_it_refuses_when_the_scratch_name_is_taken(hippo_row: Cluster,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    op_id = uuid.UUID("abcdef12-0000-4000-8000-000000000000")
    monkeypatch.setattr(drills.uuid, "uuid4", lambda: op_id)
    ClusterFactory(name="hippo-drill-abcdef")
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_row)
    assert err.value.message == drills.SCRATCH_NAME_TAKEN.format(name="hippo-drill-abcdef",
                                                                 namespace="local")
    assert not Operation.objects.exists()


def test_a_backup_of_the_source_may_run_during_a_drill(console: Console,
                                                       hippo_synced: Cluster) -> None:

    op = request_drill(hippo_synced)
    backup = backups.backup_request(cluster=hippo_synced, repo_name="repo1",
                                     backup_type="full", user=None)
    console.run(backup)
    console.run(op)
    assert (backup.status, op.status) == ("succeeded", "succeeded"), messages(op)


def test_the_scratch_name_is_checked_against_the_api(console: Console, hippo_synced: Cluster,
                                                     kube_api, hippo_manifest,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    op_id = uuid.UUID("abcdef12-0000-4000-8000-000000000000")
    monkeypatch.setattr(drills.uuid, "uuid4", lambda: op_id)
    kube_api.create_cluster(NS, hippo_manifest("hippo-drill-abcdef"))
    with pytest.raises(ServiceError) as err:
        request_drill(hippo_synced)
    assert err.value.message == drills.SCRATCH_NAME_TAKEN.format(name="hippo-drill-abcdef",
                                                                 namespace=NS)
