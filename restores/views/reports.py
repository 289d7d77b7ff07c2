"""The audit report of a period: as a page, a PDF (the same body, printed), CSV and JSON; and
its sign-off (an operator prepares it, another admin signs it)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from restores import charts, schedules
from restores.models import ReportSignoff
from restores.parsing import filter_text
from restores.selectors.drill_report import (
    ReportFacts,
    ReportFilter,
    ReportParamError,
    report_facts,
)
from restores.selectors.drill_report_export import csv_rows, report_json
from restores.services import access, reports
from restores.services.errors import ServiceError

BAD_REQUEST = 400


def _facts(request: HttpRequest, selection: ReportFilter) -> ReportFacts:
    return report_facts(selection, scope=access.cluster_filter(request.user))


def _plan_charts(facts: ReportFacts) -> list[tuple[Any, charts.ObjectiveCharts]]:
    """Each plan with runs in the period, and its RTO / RPO charts over them."""
    drawn = []
    for row in facts.plans:
        runs = [r.run for r in facts.runs if r.run.plan_id == row.plan.pk]
        if runs:
            drawn.append((row, charts.run_charts(
                runs, rto_objective=row.plan.rto_objective_seconds,
                rpo_objective=row.plan.rpo_objective_seconds, chart_id=f"report-{row.plan.pk}")))
    return drawn


def _context(request: HttpRequest, facts: ReportFacts, **extra: Any) -> dict[str, Any]:
    sel = facts.selection
    signoff = facts.signoff
    return {
        "facts": facts, "selection": sel, "tz": sel.tz, "plan_charts": _plan_charts(facts),
        "query": sel.query(), "form": sel.params(),
        "can_prepare": reports.may_prepare(request.user, platform=sel.platform,
                                           namespace=sel.namespace),
        "can_sign": signoff is not None and signoff.signed_at is None and reports.may_sign(
            request.user, platform=sel.platform, namespace=sel.namespace),
        "sign_error": "", "prepare_error": "", **extra,
    }


def _refused(request: HttpRequest, message: str, status: int = BAD_REQUEST) -> HttpResponse:
    """The page with the filter as sent and what is wrong with it, never a 500."""
    form = {k: filter_text(request.GET.get(k), max_length=64)
            for k in ("from", "to", "tz", "platform", "namespace")}
    return render(request, "restores/report.html", {"error": message, "form": form},
                  status=status)


@require_GET
def drill_report(request: HttpRequest) -> HttpResponse:
    """The report of a period and a set of clusters (GET from, to, tz, platform, namespace)."""
    try:
        selection = ReportFilter.from_query(request.GET)
    except ReportParamError as exc:
        return _refused(request, exc.message)
    return render(request, "restores/report.html", _context(request, _facts(request, selection)))


def render_pdf(html: str, base_url: str) -> bytes:
    """The printed report: WeasyPrint, which fetches nothing but the page itself."""
    import weasyprint  # a heavy import only the PDF needs
    from weasyprint.urls import URLFetcher

    # Nothing but data: URLs: the page carries its own style and pictures (inline SVG).
    fetcher = URLFetcher(allowed_protocols={"data"})
    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()


@require_GET
def drill_report_pdf(request: HttpRequest) -> HttpResponse:
    try:
        selection = ReportFilter.from_query(request.GET)
    except ReportParamError as exc:
        return HttpResponse(exc.message, status=BAD_REQUEST,
                            content_type="text/plain; charset=utf-8")
    started = time.monotonic()
    facts = _facts(request, selection)
    html = render_to_string("restores/report_print.html",
                            _context(request, facts, printing=True), request=request)
    pdf = render_pdf(html, request.build_absolute_uri("/"))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="drill-report-{selection.first}-{selection.last}.pdf"')
    response["Server-Timing"] = f"pdf;dur={(time.monotonic() - started) * 1000:.0f}"
    return response


@require_GET
def drill_report_csv(request: HttpRequest) -> HttpResponse:
    try:
        selection = ReportFilter.from_query(request.GET)
    except ReportParamError as exc:
        return HttpResponse(exc.message, status=BAD_REQUEST,
                            content_type="text/plain; charset=utf-8")
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(_facts(request, selection),
                                       base_url=request.build_absolute_uri("/").rstrip("/")))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="drill-report-{selection.first}-{selection.last}.csv"')
    return response


@require_GET
def drill_report_json(request: HttpRequest) -> JsonResponse:
    try:
        selection = ReportFilter.from_query(request.GET)
    except ReportParamError as exc:
        return JsonResponse({"error": exc.message}, status=BAD_REQUEST)
    return JsonResponse(report_json(_facts(request, selection)),
                        json_dumps_params={"indent": 2, "ensure_ascii": False})


def _report_url(selection: ReportFilter) -> str:
    return f"{reverse('restores:drill_report')}?{selection.query()}#signoff"


@require_POST
def drill_report_prepare(request: HttpRequest) -> HttpResponse:
    """Keep the report as it reads now, for an admin to sign (operator or admin over all of
    its scope; refused before anything is read)."""
    reports.require_prepare(request.user,
                            platform=filter_text(request.POST.get("platform"), max_length=32),
                            namespace=filter_text(request.POST.get("namespace"),
                                                  max_length=253))
    try:
        selection = ReportFilter.from_query(request.POST)
    except ReportParamError as exc:
        return _refused(request, exc.message, status=422)
    facts = _facts(request, selection)
    reports.report_prepare(user=request.user, period_start=selection.start,
                           period_end=selection.end, time_zone=selection.tz,
                           platform=selection.platform, namespace=selection.namespace,
                           summary=facts.summary)
    return redirect(_report_url(selection))


def signoff_selection(signoff: ReportSignoff) -> ReportFilter:
    """The report a sign-off is of: its days in its zone, its scope."""
    zone = schedules.zone(signoff.time_zone or "UTC")
    return ReportFilter(signoff.period_start.astimezone(zone).date(),
                        signoff.period_end.astimezone(zone).date() - dt.timedelta(days=1),
                        signoff.time_zone or "UTC", signoff.platform, signoff.namespace)


@require_POST
def drill_report_sign(request: HttpRequest, signoff_id: int) -> HttpResponse:
    """Sign a prepared report: an admin over its scope, not its author, while its facts are
    unchanged. A refusal comes back in words next to the form (422)."""
    signoff = get_object_or_404(ReportSignoff, pk=signoff_id)
    reports.require_sign(request.user, signoff)
    selection = signoff_selection(signoff)
    facts = _facts(request, selection)
    try:
        reports.report_sign(user=request.user, signoff_id=signoff.pk,
                            current_digest=facts.digest,
                            note=filter_text(request.POST.get("note"), max_length=2000))
    except ServiceError as exc:
        return render(request, "restores/report.html",
                      _context(request, facts, sign_error=exc.message), status=422)
    return redirect(_report_url(selection))
