"""Drill views: run a drill from a cluster page, the drill report and its CSV export."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from restores.forms.drills import DrillForm
from restores.parsing import page_number
from restores.selectors.drill_overview import cluster_charts, plan_statuses
from restores.selectors.drills import OUTCOMES, DrillFilter, csv_rows, drill_page
from restores.services import access, drills
from restores.views.clusters import card_form
from restores.views.common import cluster_for, partial

# The service's field names, as the form calls them.
FORM_FIELD = {"time": "at", "kind": "kind", "repo": "repo"}


@require_POST
def drill_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name, "drill")
    form = DrillForm(request.POST, cluster=cluster)
    return card_form(request, cluster, form, lambda: drills.drill_request(
        cluster=cluster, repo_name=form.cleaned_data["repo"], point=form.target,
        user=request.user), region="drill-form", form_name="drill_form", fields=FORM_FIELD)


@require_GET
@vary_on_headers("HX-Request")
def drill_list(request: HttpRequest) -> HttpResponse:
    """The Drills page: the plans with their last runs and charts (failing and overdue
    first), a cluster's chart when filtered by one, every drill run (filtered, paged) and
    each cluster's last success."""
    selection = DrillFilter.from_query(request.GET)
    scope = (access.cluster_filter(request.user, prefix="cluster__"),
             access.cluster_filter(request.user))
    report = drill_page(selection, page=page_number(request.GET.get("page")),
                                     scope=scope)
    context: dict[str, Any] = {"report": report, "outcomes": list(OUTCOMES)}
    if not request.htmx:  # a page of the table needs neither the plans nor the charts
        run_scope = access.cluster_filter(request.user, prefix="cluster__")
        context["plans"] = plan_statuses(run_scope=run_scope, plan_scope=scope[1],
                                         page=page_number(request.GET.get("plans")))
        if selection.cluster:
            context["cluster_charts"] = cluster_charts(selection.cluster, run_scope=run_scope)
    template = partial(request, "restores/drills.html", "drill-table")
    return render(request, template, context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def drill_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The same rows as the report, every page, as CSV."""
    selection = DrillFilter.from_query(request.GET)
    writer = csv.writer(_Echo())
    base_url = request.build_absolute_uri("/").rstrip("/")
    rows = csv_rows(selection, base_url=base_url,
                                 scope=access.cluster_filter(request.user, prefix="cluster__"))
    response = StreamingHttpResponse((writer.writerow(row) for row in rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="drills.csv"'
    return response
