"""The console's URLs plus the baseline: a trivial view behind the same middleware.

The baseline answers "ok" without a template or a query of its own; it still goes through
every middleware the console's pages go through, so it pays for the session and the logged-in
user (two queries) like they do. A page's ratio to it is what the page's own work costs.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

BASELINE_PATH = "/__bench__/baseline/"


def baseline(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path(BASELINE_PATH.strip("/") + "/", baseline, name="bench-baseline"),
    path("", include("dr_console.urls")),
]
