"""Guard rails on destructive actions, through the services and the reconcile steps: exact
typed names, a backup before every in-place restore, database names checked before anything
stops, no second writable primary, an honest "old primary is gone" override, and a stale page
that cannot start what the current state forbids."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from restores import inventory
from restores.models import Backup, Cluster, Operation
from restores.platforms.targets import RestoreTarget
from restores.services import inplace, power, promotion
from restores.services.errors import ServiceError
from restores.steps import inplace as inplace_steps
from tests.actions import request_in_place_restore
from tests.factories import HIPPO_FULL, OperationFactory, user_with_role
from tests.fakes import FakePlatform
from tests.worker import run_step

pytestmark = pytest.mark.django_db
# -- typed confirmations -------------------------------------------------------------------


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


def test_the_restore_form_keeps_a_trailing_space_and_refuses_it(hippo_row: Cluster) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    r = client.post(hippo_row.get_absolute_url() + "restore/",
                    {"kind": "latest", "confirm": "hippo ", "safety_backup": "on"})
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    assert not Operation.objects.exists()


# -- an in-place restore can be undone ------------------------------------------------------


def test_an_in_place_restore_first_backs_up_the_current_state(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = request_in_place_restore(hippo_row)
    assert op.params["safety_backup"] is True
    op = run_step(op)
    trigger = op.refs["trigger"]
    assert (op.status, op.step) == ("running", "safety_backup")
    assert fake.started == [trigger + inplace_steps.SAFETY_SUFFIX]
    assert getattr(fake, "in_place", {}) == {}  # nothing touched while it backs up
    assert run_step(op).step == "safety_backup"
    fake.finish(trigger + inplace_steps.SAFETY_SUFFIX)
    op = run_step(op)
    label = op.refs["safety_backup"]
    assert label and fake.in_place == {trigger: "running"}
    assert inplace_steps.SAFETY_BACKUP_DONE.format(label=label, repo="repo1") in list(
        op.events.values_list("message", flat=True))
    fake.in_place[trigger] = "succeeded"
    op = run_step(op)
    assert op.status == "succeeded" and op.result["safety_backup"] == label
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(op.get_absolute_url()).content.decode()
    assert 'id="safety-backup"' in page and label in page


def test_a_failed_backup_of_the_current_state_touches_nothing(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    op = run_step(request_in_place_restore(hippo_row))
    fake.finish(op.refs["trigger"] + inplace_steps.SAFETY_SUFFIX, ok=False,
                message="[047] unable to create path")
    op = run_step(op)
    assert op.status == "failed"
    assert op.error_reason == inplace_steps.SAFETY_BACKUP_FAILED.format(
        reason="[047] unable to create path")
    assert op.error_fix == inplace_steps.SAFETY_BACKUP_FIX
    assert getattr(fake, "in_place", {}) == {}


def test_turning_the_backup_off_is_recorded(fake: FakePlatform, hippo_row: Cluster) -> None:
    op = request_in_place_restore(hippo_row, safety_backup=False)
    assert op.params["safety_backup"] is False
    assert "Without a backup of the current state first" in op.events.get().message
    assert run_step(op).step == "running" and fake.started == []


def test_the_review_says_the_cluster_goes_down_for_how_long_and_what_is_lost(
    hippo_row: Cluster
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(hippo_row.get_absolute_url() + "restore/").content.decode()
    assert 'id="restore-review"' in page
    assert "<strong>goes down</strong>" in page and 'id="downtime-estimate"' in page
    assert "every change made after\n      the point is lost" in page
    assert "unless you keep the backup taken first" in page
    OperationFactory(cluster=hippo_row, kind="restore_in_place", status="succeeded",
                     finished_at=timezone.now(), result={"downtime_seconds": "74.0"})
    page = client.get(hippo_row.get_absolute_url() + "restore/").content.decode()
    assert "1 min 14 s" in page and "the last in-place restore of hippo" in page


# -- database names, before anything stops ---------------------------------------------------


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


def test_the_first_step_rechecks_the_names_against_the_repo(
    fake: FakePlatform, hippo_databases: Cluster
) -> None:
    """The stored list said `reporting`; the repo, read again, does not have it."""
    op = request_in_place_restore(hippo_databases, db_include=("reporting",))
    fake.databases = {HIPPO_FULL: ["hippo"]}
    op = run_step(op)
    assert op.status == "failed" and op.error_fix == inplace_steps.IN_PLACE_DB_FIX
    assert op.error_reason == f"reporting is not in backup set {HIPPO_FULL}, which holds: hippo."
    assert fake.started == [] and getattr(fake, "in_place", {}) == {}


def test_the_platform_is_told_which_set_the_names_were_checked_against(
    fake: FakePlatform, hippo_databases: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    original = FakePlatform.restore_in_place_advance
    monkeypatch.setattr(FakePlatform, "restore_in_place_advance",
                        lambda self, req: (seen.append(req), original(self, req))[1])
    run_step(request_in_place_restore(hippo_databases, db_include=("reporting",),
                                      safety_backup=False))
    assert [(r.db_include, r.db_set) for r in seen] == [(("reporting",), HIPPO_FULL)]


# -- no second writable primary ----------------------------------------------------------------


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


def test_the_start_page_names_the_promoted_cluster_and_asks_for_the_acknowledgement(
    hippo_row: Cluster, promoted_standby: Cluster
) -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    page = client.get(hippo_row.get_absolute_url() + "start/").content.decode()
    assert 'id="former-primary"' in page and "hippo-sb" in page
    assert 'name="acknowledge"' in page
    r = client.post(hippo_row.get_absolute_url() + "start/", {"confirm": "hippo"})
    assert r.status_code == 422 and 'id="error-acknowledge"' in r.content.decode()
    assert not Operation.objects.filter(kind="start").exists()


def test_a_primary_with_no_promoted_successor_starts_without_questions(
    fake: FakePlatform, hippo_row: Cluster
) -> None:
    run_step(power.power_request(cluster=hippo_row, shutdown=True, user=None, confirm="hippo"))
    inventory.platform_sync(platform_name="local")
    hippo_row.refresh_from_db()
    op = power.power_request(cluster=hippo_row, shutdown=False, user=None, confirm="hippo")
    assert op.params == {"acknowledge_split_brain": False}


# -- the "old primary is gone" override ---------------------------------------------------------


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


# -- a stale page cannot start what the state forbids ---------------------------------------------


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
