"""The promotion page: the typed name, and a standby to promote."""

from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Cluster, Operation, Repository
from restores.services import promotion

pytestmark = pytest.mark.django_db
BASE = "/clusters/local/local/hippo/"


def test_promotion_needs_the_typed_name_and_a_standby(client: Client, repo: Repository,
                                                      hx) -> None:  # type: ignore[no-untyped-def]
    r = client.post(BASE + "promote/", {"confirm": "hippo"}, **hx)
    assert r.status_code == 422
    assert promotion.NOT_A_STANDBY.format(cluster="hippo") in r.content.decode()
    Cluster.objects.filter(pk=repo.cluster.pk).update(role="standby")
    r = client.post(BASE + "promote/", {"confirm": "hipo"}, **hx)
    assert r.status_code == 422 and 'id="error-confirm"' in r.content.decode()
    r = client.post(BASE + "promote/", {"confirm": "hippo"}, **hx)
    assert r["HX-Redirect"] == Operation.objects.get(kind="promote").get_absolute_url()
