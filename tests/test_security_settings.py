"""Logins are throttled, sessions end, the production settings pass Django's deploy check,
every page carries a Content-Security-Policy, and the console's own files are private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from restores.middleware import POLL_HEADER, TOUCH_EVERY
from restores.models import AuditEntry
from tests.factories import user_with_role

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


def _login(client: Client, username: str, password: str) -> int:
    return client.post("/login/", {"username": username, "password": password}).status_code


@pytest.mark.django_db
def test_ten_failed_logins_lock_the_user_out_even_with_the_right_password() -> None:
    user_with_role("dba", password=PASSWORD)
    assert settings.AXES_FAILURE_LIMIT == 10
    for n in range(10):
        # From changing addresses: the username alone locks. The tenth failure is refused
        # with the lock-out page already.
        client = Client(REMOTE_ADDR=f"198.51.100.{n}")
        assert _login(client, "dba", f"wrong {n}") == (200 if n < 9 else 429)
    locked = Client(REMOTE_ADDR="203.0.113.9")
    r = locked.post("/login/", {"username": "dba", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed logins" in r.content.decode()
    assert "_auth_user_id" not in locked.session
    assert locked.get("/").status_code == 302  # not logged in
    assert AuditEntry.objects.filter(action="login.locked_out").exists()
    assert not AuditEntry.objects.filter(action="login").exists()


@pytest.mark.django_db
def test_ten_failed_logins_from_one_address_lock_that_address() -> None:
    user_with_role("victim", password=PASSWORD)
    attacker = Client(REMOTE_ADDR="192.0.2.66")
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(attacker, f"guess{n}", "x")
    assert _login(attacker, "victim", PASSWORD) == 429
    assert _login(Client(REMOTE_ADDR="192.0.2.1"), "victim", PASSWORD) == 302  # elsewhere: fine


@pytest.mark.django_db
def test_a_session_ends_when_idle_and_background_polls_do_not_keep_it_alive() -> None:
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    user_with_role("dba", password=PASSWORD)
    client = Client()
    assert _login(client, "dba", PASSWORD) == 302
    assert client.cookies[settings.SESSION_COOKIE_NAME]["expires"] == ""  # a browser session
    key = client.session.session_key

    def expiry() -> float:
        return Session.objects.get(session_key=key).expire_date.timestamp()

    first = expiry()
    session = client.session
    session["_dr_seen"] = int(time.time()) - TOUCH_EVERY - 1  # the last activity, long ago
    session.save()
    saved = expiry()
    client.get("/", headers={POLL_HEADER: "1", "HX-Request": "true"})
    assert expiry() == saved  # a poll is no activity
    client.get("/")
    assert expiry() > first - 1  # a real request moves the end forward again
    assert expiry() >= time.time() + settings.SESSION_COOKIE_AGE - 5


@pytest.mark.django_db
def test_a_poll_whose_session_ended_sends_the_page_to_the_login() -> None:
    r = Client().get("/?v=x", headers={"HX-Request": "true", POLL_HEADER: "1",
                                       "HX-Current-URL": "http://testserver/drills/?page=2"})
    assert r.status_code == 200
    assert r["HX-Redirect"] == "/login/?next=/drills/%3Fpage%3D2"


@pytest.mark.django_db
def test_every_page_sends_a_content_security_policy_without_inline_code() -> None:
    client = Client()
    client.force_login(user_with_role("dba"))
    for url in ("/", "/login/", "/drills/", "/audit/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_production_settings_pass_the_deploy_check_with_no_warning(tmp_path: Path) -> None:
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "k" * 20 + os.urandom(24).hex(),
           "SECURE_COOKIES": "true", "SECURE_HSTS_SECONDS": "31536000",
           "SECURE_SSL_REDIRECT": "true", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
           "DR_VAR_DIR": str(tmp_path)}
    proc = _run(env, "check", "--deploy", "--fail-level", "WARNING")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues (0 silenced)." in proc.stdout
    bare = _run({**env, "SECURE_HSTS_SECONDS": "0"}, "check", "--deploy")
    assert "security.W004" in bare.stdout + bare.stderr  # the check does look


def test_the_console_keeps_its_files_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DR_VAR_DIR=str(var), DEBUG="false")
    proc = _run(env, "migrate", "--noinput", "-v", "0")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for name in ("console.sqlite3", "secret_key"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name
    # An old checkout's 0755 directory and 0644 database are tightened on the next start.
    var.chmod(0o755)
    (var / "console.sqlite3").chmod(0o644)
    assert _run(env, "check").returncode == 0
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "console.sqlite3").stat().st_mode) == 0o600
