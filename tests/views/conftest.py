from __future__ import annotations

import pytest
from django.test import Client

from restores.models import Repository
from tests.factories import BackupFactory, ClusterFactory, RepositoryFactory, user_with_role


@pytest.fixture
def user(db):  # type: ignore[no-untyped-def]
    """An admin of every cluster (the role tests use viewers and operators of their own)."""
    return user_with_role("dba")


@pytest.fixture
def client(user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def hx() -> dict[str, str]:
    return {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def repo(db) -> Repository:  # type: ignore[no-untyped-def]
    repo = RepositoryFactory(cluster=ClusterFactory(name="hippo"))
    BackupFactory(repository=repo, label="20261124-090000F")
    return repo
