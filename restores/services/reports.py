"""Signing off the audit report of a period: an operator (or admin) prepares it, an admin
other than its author signs it; both audited.

The report's facts come from its selector (restores/selectors/drill_report.py), read by the
view with the user's scope; this module keeps them: a `ReportSignoff` holds the summary and
its SHA-256 (every run's evidence hash among it), so a signature is of those facts. A report
whose facts changed since it was prepared (a run finished, a remediation moved) is not signed:
it is prepared again.

Preparing needs the operator role, signing the admin role, over the report's whole scope
(its platform and namespace; "" = every one): a namespace's admin cannot sign a report of
the whole platform.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from restores.models import ReportSignoff
from restores.models import auditlog as audit
from restores.models.drills import evidence_digest
from restores.services import access
from restores.services.errors import ServiceError

User = AbstractBaseUser | AnonymousUser | None

PREPARE_DENIED = (
    "You may not prepare the audit report of {where}: that needs the operator role over all "
    "of it, and you have {have}. Narrow the report to a platform and namespace you operate, "
    "or ask an admin of the console."
)
SIGN_DENIED = (
    "You may not sign the audit report of {where}: that needs the admin role over all of "
    "it, and you have {have}."
)
SIGN_OWN_REPORT = (
    "You prepared this report, so another admin must sign it: a sign-off is a second "
    "person's review."
)
SIGN_ALREADY = "This report was already signed by {who} at {at}."
SIGN_CHANGED = (
    "The report's facts changed since it was prepared (a run finished, a deficiency's "
    "follow-up changed): prepare it again, then sign the new one."
)
SIGNOFF_UNKNOWN = "There is no such report to sign."


def _where(platform: str, namespace: str) -> str:
    if not platform and not namespace:
        return "every cluster"
    return f"{platform or '*'}/{namespace or '*'}"


def _require(user: User, least: int, message: str, platform: str, namespace: str) -> None:
    if user is not None and not user.is_authenticated:
        raise access.AccessDenied(access.NOT_LOGGED_IN)
    have = _role_over(user, platform, namespace)
    if have < least:
        raise access.AccessDenied(message.format(
            where=_where(platform, namespace),
            have=f"the {access.ROLE_NAMES[have]} role" if have else "none there"))


def _role_over(user: User, platform: str, namespace: str) -> int:
    """The role `user` holds over every cluster of platform/namespace ("" = all)."""
    return max((s.role for s in access.scopes(user)
                if (not s.platform or s.platform == platform)
                and (not s.namespace or s.namespace == namespace)), default=access.NONE)


def may_prepare(user: User, *, platform: str, namespace: str) -> bool:
    return _role_over(user, platform, namespace) >= access.OPERATOR


def may_sign(user: User, *, platform: str, namespace: str) -> bool:
    return _role_over(user, platform, namespace) >= access.ADMIN


def require_prepare(user: User, *, platform: str, namespace: str) -> None:
    """AccessDenied unless `user` may prepare a report of platform/namespace (before any
    form is read)."""
    _require(user, access.OPERATOR, PREPARE_DENIED, platform, namespace)


def report_prepare(*, user: User, period_start: dt.datetime, period_end: dt.datetime,
                   time_zone: str, platform: str, namespace: str,
                   summary: dict[str, Any]) -> ReportSignoff:
    """Keep the report's `summary` (as the report selector made it for this user) with its
    SHA-256, for an admin to sign."""
    require_prepare(user, platform=platform, namespace=namespace)
    digest = evidence_digest(summary)
    with transaction.atomic():
        signoff = ReportSignoff.objects.create(
            period_start=period_start, period_end=period_end, time_zone=time_zone,
            platform=platform, namespace=namespace, summary=summary, digest=digest,
            prepared_by=user if user is not None and user.is_authenticated else None)
        audit.audit_record(
            action=audit.REPORT_PREPARED, user=user,
            params={"signoff": signoff.pk, "from": period_start.isoformat(),
                    "to": period_end.isoformat(), "time_zone": time_zone,
                    "scope": _where(platform, namespace), "digest_sha256": digest,
                    "runs": len(summary.get("runs") or [])},
            result=f"report of {_where(platform, namespace)} prepared")
    return signoff


def require_sign(user: User, signoff: ReportSignoff) -> None:
    _require(user, access.ADMIN, SIGN_DENIED, signoff.platform, signoff.namespace)


def report_sign(*, user: User, signoff_id: int, current_digest: str,
                note: str = "") -> ReportSignoff:
    """Sign the prepared report `signoff_id`: an admin over its scope who did not prepare
    it, while its facts (`current_digest`, of the report as it reads now) are the ones it
    was prepared with. ServiceError in words otherwise; AccessDenied without the role."""
    signoff = ReportSignoff.objects.select_related("signed_by").filter(pk=signoff_id).first()
    if signoff is None:
        raise ServiceError(SIGNOFF_UNKNOWN)
    require_sign(user, signoff)
    if signoff.signed_at is not None:
        raise ServiceError(SIGN_ALREADY.format(
            who=signoff.signed_by.get_username() if signoff.signed_by else "someone",
            at=signoff.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")))
    if user is None or signoff.prepared_by_id == getattr(user, "pk", None):
        raise ServiceError(SIGN_OWN_REPORT)
    if current_digest != signoff.digest:
        raise ServiceError(SIGN_CHANGED)
    now = timezone.now()
    with transaction.atomic():
        # Conditional: two admins signing at once, one wins; the other hears who did.
        signed = ReportSignoff.objects.filter(pk=signoff.pk, signed_at__isnull=True).update(
            signed_by=user, signed_at=now, note=note[:2000])
        if not signed:
            signoff.refresh_from_db()
            raise ServiceError(SIGN_ALREADY.format(
                who=signoff.signed_by.get_username() if signoff.signed_by else "someone",
                at=signoff.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
                if signoff.signed_at else "?"))
        audit.audit_record(
            action=audit.REPORT_SIGNED, user=user,
            params={"signoff": signoff.pk, "digest_sha256": signoff.digest,
                    "scope": _where(signoff.platform, signoff.namespace),
                    "from": signoff.period_start.isoformat(),
                    "to": signoff.period_end.isoformat()},
            result=f"report of {_where(signoff.platform, signoff.namespace)} signed")
    signoff.refresh_from_db()
    return signoff
