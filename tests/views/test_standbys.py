"""The standby form creates a standby of the cluster."""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Operation, Repository
from tests.fakes import FakePlatform

pytestmark = pytest.mark.django_db
BASE = "/clusters/local/local/hippo/"


def test_a_standby_is_created_from_the_form(client: Client, repo: Repository, hx,  # type: ignore[no-untyped-def]
                                            fake: FakePlatform) -> None:
    page = client.get(BASE + "standby/").content.decode()
    assert 'value="hippo-standby"' in page
    bad = client.post(BASE + "standby/", {"name": "Bad_Name", "repo": "repo1"}, **hx)
    assert bad.status_code == 422 and 'id="error-name"' in bad.content.decode()
    r = client.post(BASE + "standby/", {"name": "hippo-standby", "repo": "repo1"}, **hx)
    op = Operation.objects.get()
    assert r["HX-Redirect"] == op.get_absolute_url()
    assert (op.kind, op.cluster.name) == ("create_standby", "hippo-standby")
