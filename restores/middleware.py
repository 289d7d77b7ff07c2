"""The console's request middleware: who is asking and from where (for the audit log and the
login lock-out), the idle timeout of a session, and a background poll whose session ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import resolve_url

from restores.models.auditlog import request_address

# A page's background polls send this header (their hx-headers): they are not activity, so a
# tab left open still lets its session end after DR_SESSION_IDLE_SECONDS.
POLL_HEADER = "X-DR-Poll"
# A session's expiry is pushed forward at most this often (each push is a write).
TOUCH_EVERY = 60


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind DR_TRUSTED_PROXY_COUNT proxies the address the outermost one
    saw: the entry of X-Forwarded-For that many from its right end (the entries to the left
    of it come from the client and prove nothing)."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.DR_TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    return hops[-proxies] if len(hops) >= proxies else remote


def _touch(request: HttpRequest) -> None:
    """Count a request as activity: the session is saved again (its expiry moves) at most
    once every TOUCH_EVERY seconds."""
    if request.headers.get(POLL_HEADER) or not request.user.is_authenticated:
        return
    now = int(time.time())
    if now - int(request.session.get("_dr_seen", 0)) >= TOUCH_EVERY:
        request.session["_dr_seen"] = now


def _relogin(request: HttpRequest, response: HttpResponseBase) -> HttpResponse | None:
    """An htmx request whose session ended would follow the login redirect and swap the login
    page into a fragment: send the whole page to the login instead."""
    login = str(resolve_url(settings.LOGIN_URL))
    if not (getattr(request, "htmx", False) and response.status_code == 302
            and not request.user.is_authenticated
            and response.get("Location", "").startswith(login)):
        return None
    page = urlsplit(request.headers.get("HX-Current-URL") or request.get_full_path())
    back = page.path + (f"?{page.query}" if page.query else "")
    answer = HttpResponse(status=200)
    answer["HX-Redirect"] = f"{login}?next={quote(back)}"
    return answer


def console_middleware(get_response: Callable[[HttpRequest], HttpResponseBase]
                       ) -> Callable[[HttpRequest], HttpResponseBase]:
    def middleware(request: HttpRequest) -> HttpResponseBase:
        _touch(request)
        with request_address(client_address(request)):
            response = get_response(request)
        return _relogin(request, response) or response

    return middleware
