"""What the browser tests share: the people who log in, and logging in."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from restores.models import Grant

USERNAME, PASSWORD = "dba", "e2e correct horse battery"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
OPERATION_URL = re.compile(rf"/operations/{UUID}/$")


def make_user(username: str = USERNAME, role: str = Grant.Role.ADMIN, *, platform: str = "",
              namespace: str = "", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """A user who holds `role` on platform/namespace ("" = every cluster)."""
    user = get_user_model().objects.create_user(username=username, password=password)
    Grant.objects.create(user=user, role=role, platform=platform, namespace=namespace)
    return user


def log_in(page: Page, username: str = USERNAME, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
