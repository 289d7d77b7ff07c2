"""The one wait a request makes on a platform (`services.live.ask`): within its deadline the
answer comes through, a platform error as it is; past it the request answers with a message
and nothing is saved, however long the platform takes."""

from __future__ import annotations

import threading
import time

import pytest

from restores.models import CloneDraft, Cluster
from restores.platforms.base import PermanentError, TransientError
from restores.services import clones, live
from tests.fakes import FakePlatform
from tests.kube.fixtures import NS, Console

pytestmark = pytest.mark.django_db


def test_an_answer_within_the_deadline_comes_through(fake: FakePlatform, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_LIVE_CHECK_TIMEOUT = 5
    assert live.ask("local", "the platform's name", lambda p: p.name) == fake.name


def test_a_platform_error_comes_through_as_it_is(fake: FakePlatform, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_LIVE_CHECK_TIMEOUT = 5

    def refuse(_platform: object) -> None:
        raise PermanentError("no such namespace")

    with pytest.raises(PermanentError, match="no such namespace"):
        live.ask("local", "is the name free", refuse)


def test_a_question_past_its_deadline_is_answered_with_a_message(fake: FakePlatform,  # type: ignore[no-untyped-def]
                                                                 settings) -> None:
    settings.DR_LIVE_CHECK_TIMEOUT = 0.2
    release = threading.Event()
    started = time.monotonic()
    try:
        with pytest.raises(TransientError) as late:
            live.ask("local", "is the name free", lambda _p: release.wait(30))
        waited = time.monotonic() - started
    finally:
        release.set()
    assert late.value.message == live.LIVE_TIMEOUT.format(
        platform="local", seconds=0.2, what="is the name free")
    assert not late.value.permanent
    assert waited < 5  # the deadline, not the question's 30 s


def test_a_hung_api_server_leaves_the_wizard_answering_and_the_draft_unchanged(
    console: Console, hippo_synced: Cluster  # type: ignore[no-untyped-def]
) -> None:
    console.settings.DR_LIVE_CHECK_TIMEOUT = 0.5
    draft = clones.draft_create(user=None, source=hippo_synced)
    clones.draft_save_source(user=None, draft=draft, cluster=hippo_synced, repo_name="repo1")
    clones.draft_save_point(user=None, draft=draft, point=clones.RestoreTarget(),
                            display={"date": "", "clock": "", "zone": "UTC"})
    reached = CloneDraft.objects.get(pk=draft.pk).reached
    console.server.faults.hang(5, verb="get", resource="postgresclusters")
    started = time.monotonic()
    with pytest.raises(clones.ServiceError) as late:
        clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(
            name="elephant", namespace=NS, storage="2Gi", restore_job={}))
    assert time.monotonic() - started < 4
    assert late.value.message == live.LIVE_TIMEOUT.format(
        platform="kubernetes", seconds=0.5, what="is the name free")
    assert late.value.field is None
    saved = CloneDraft.objects.get(pk=draft.pk)
    assert (saved.reached, saved.target.get("name")) == (reached, None)
