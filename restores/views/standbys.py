"""Creating a standby of a cluster."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from restores.forms.standbys import StandbyForm
from restores.services import (
    standbys,
)
from restores.views.common import action_form, cluster_for, posted


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_standby(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name, "standby")
    return action_form(
        request, cluster, "standby", StandbyForm(posted(request), cluster=cluster),
        lambda d: standbys.standby_request(
            source=cluster, name=d["name"], namespace=d.get("namespace") or namespace,
            repo_name=d["repo"], user=request.user,
        ),
    )
