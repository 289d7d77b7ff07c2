"""Drill views: run a drill from a cluster page, the drill report and its CSV export."""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from restores import drill_report, selectors
from restores.forms import DrillForm
from restores.parsing import page_number
from restores.services import access, drills, errors
from restores.views import _answer, _cluster_for, _partial, cluster_context

# The service's field names, as the form calls them.
FORM_FIELD = {"time": "at", "kind": "kind", "repo": "repo"}


@require_POST
def drill_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _cluster_for(request, platform, namespace, name, "drill")
    form = DrillForm(request.POST, cluster=cluster)
    if form.is_valid():
        try:
            op = drills.drill_request(cluster=cluster, repo_name=form.cleaned_data["repo"],
                                      point=form.target, user=request.user)
        except errors.ServiceError as exc:
            form.add_error(FORM_FIELD.get(exc.field or ""), exc.message)
        else:
            return _answer(request, op)
    template = _partial(request, "restores/cluster.html", "drill-form")
    context = cluster_context(request, cluster,
                              fingerprints=selectors.cluster_fingerprints(cluster),
                              drill_form=form)
    return render(request, template, context, status=422)


@require_GET
@vary_on_headers("HX-Request")
def drill_list(request: HttpRequest) -> HttpResponse:
    """The audit report: every drill run (filtered, paged) and each cluster's last success."""
    selection = drill_report.DrillFilter.from_query(request.GET)
    scope = (access.cluster_filter(request.user, prefix="cluster__"),
             access.cluster_filter(request.user))
    report = drill_report.drill_page(selection, page=page_number(request.GET.get("page")),
                                     scope=scope)
    template = _partial(request, "restores/drills.html", "drill-table")
    return render(request, template, {"report": report,
                                      "outcomes": list(drill_report.OUTCOMES)})


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def drill_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The same rows as the report, every page, as CSV."""
    selection = drill_report.DrillFilter.from_query(request.GET)
    writer = csv.writer(_Echo())
    base_url = request.build_absolute_uri("/").rstrip("/")
    rows = drill_report.csv_rows(selection, base_url=base_url,
                                 scope=access.cluster_filter(request.user, prefix="cluster__"))
    response = StreamingHttpResponse((writer.writerow(row) for row in rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="drills.csv"'
    return response
