from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import user_with_role


@pytest.fixture
def client(db) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(user_with_role("dba"))
    return c


@pytest.fixture
def bench_urls(settings) -> None:  # type: ignore[no-untyped-def]
    """The console's URLs plus the bench's baseline view."""
    settings.ROOT_URLCONF = "bench.urls"
