"""Promoting a standby."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from restores.forms.confirm import PromoteForm
from restores.services import (
    promotion,
)
from restores.views.common import action_form, cluster_for, posted


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_promote(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name, "promote")
    return action_form(
        request, cluster, "promote", PromoteForm(posted(request)),
        lambda d: promotion.promote_request(
            cluster=cluster, confirm=d["confirm"], user=request.user,
            primary_gone=d["primary_gone"],
        ),
        {"offer_override": promotion.promotion_override_offered(cluster),
         "primary": promotion.standby_primary(cluster)},
    )
