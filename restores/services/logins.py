"""Logins, failed logins, lock-outs and logouts into the audit log (Django's and
django-axes' own signals: the login view is theirs). Never the password: only the username
that was tried."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from restores.models import auditlog as audit


@receiver(user_logged_in, dispatch_uid="dr_audit_login")
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.audit_record(action=audit.LOGIN, user=user)


@receiver(user_logged_out, dispatch_uid="dr_audit_logout")
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.audit_record(action=audit.LOGOUT, user=user)


@receiver(user_login_failed, dispatch_uid="dr_audit_login_failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None,
                  **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit.audit_record(action=audit.LOGIN_FAILED, actor_name=username or "anonymous",
                       params={"username": username})


@receiver(user_locked_out, dispatch_uid="dr_audit_locked_out")
def _locked_out(sender: Any, request: Any = None, username: str | None = None,
                ip_address: str | None = None, **kwargs: Any) -> None:
    audit.audit_record(action=audit.LOGIN_LOCKED_OUT, actor_name=(username or "anonymous")[:150],
                       params={"username": username or "", "address": ip_address or ""})
