"""The Audit page and its CSV export: who did what, when, from where, on which cluster.
Admins of every cluster see every entry; everyone else the entries about the clusters in
their scope."""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from restores.models import auditlog as audit
from restores.parsing import page_number
from restores.selectors.audit import AuditFilter, audit_page, csv_rows
from restores.services import access


class _Echo:
    def write(self, value: str) -> str:
        return value


def _scope(request: HttpRequest):  # type: ignore[no-untyped-def]
    access.require_somewhere(request.user, "view")
    return access.audit_filter(request.user)


@require_GET
@vary_on_headers("HX-Request")
def audit_list(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    selection = AuditFilter.from_query(request.GET)
    report = audit_page(selection, scope=scope,
                                     page=page_number(request.GET.get("page")))
    template = "restores/audit.html#audit-table" if request.htmx else "restores/audit.html"
    return render(request, template, {"report": report, "actions": audit.ACTIONS,
                                      "everything": access.is_global_admin(request.user)})


@require_GET
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    scope = _scope(request)
    selection = AuditFilter.from_query(request.GET)
    writer = csv.writer(_Echo())
    rows = csv_rows(selection, scope=scope)
    response = StreamingHttpResponse((writer.writerow(row) for row in rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
