"""Shut down and start, with the cluster's name typed and what stops said."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from restores.forms.confirm import PowerForm
from restores.selectors.standbys import standbys_of
from restores.services import (
    power,
    promotion,
)
from restores.views.common import action_form, cluster_for, posted


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_power(request: HttpRequest, platform: str, namespace: str, name: str,
                  action: str) -> HttpResponse:
    """Shut down or start, with the cluster's name typed: the page says what stops."""
    if action not in ("shutdown", "start"):
        return HttpResponse(status=404)
    cluster = cluster_for(request, platform, namespace, name, action)
    shutdown = action == "shutdown"
    context = {"followers": standbys_of(cluster) if shutdown else [],
               "promoted": [] if shutdown else promotion.promoted_successors(cluster)}
    return action_form(
        request, cluster, action, PowerForm(posted(request)),
        lambda d: power.power_request(
            cluster=cluster, shutdown=shutdown, user=request.user, confirm=d["confirm"],
            acknowledge_split_brain=d["acknowledge"],
        ), context,
    )
