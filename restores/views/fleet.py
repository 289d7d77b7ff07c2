"""The Fleet page and its refresh."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from restores.parsing import filter_text, page_number
from restores.selectors.fleet import fleet_fingerprint, fleet_overview
from restores.services import access
from restores.views.common import partial


@require_GET
@vary_on_headers("HX-Request")
def fleet(request: HttpRequest) -> HttpResponse:
    fingerprint = fleet_fingerprint()
    if request.htmx and request.GET.get("v") == fingerprint:
        return HttpResponse(status=204)
    overview = fleet_overview(
        query=filter_text(request.GET.get("q")),
        busy_only=request.GET.get("busy") == "1",
        page=page_number(request.GET.get("page")),
        scope=access.cluster_filter(request.user),
        with_scratch=request.GET.get("scratch") == "1",
    )
    template = partial(request, "restores/fleet.html", "fleet-table")
    return render(request, template, {"fleet": overview, "fingerprint": fingerprint,
                                      "can_clone": access.best_role(request.user)
                                      >= access.OPERATOR})
