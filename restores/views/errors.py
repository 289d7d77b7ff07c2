"""403: the role that is missing, in words, and the refusal in the audit log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from restores.models import auditlog as audit
from restores.services import access


def denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: the role that is missing, in words; an htmx request gets it in the page's main
    region. A refused authenticated request is audited."""
    message = getattr(exception, "message", "") or "You may not do this."
    if isinstance(exception, access.AccessDenied) and request.user.is_authenticated:
        audit.audit_record(action=audit.ACCESS_DENIED, user=request.user,
                           params={"method": request.method, "path": request.path[:300]},
                           result=message)
    response = render(request, "403.html", {"message": message}, status=403)
    if request.htmx:
        response["HX-Retarget"] = "main"
        response["HX-Reswap"] = "innerHTML"
    return response
