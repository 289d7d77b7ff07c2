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
from restores.parsing import filter_text, page_number
from restores.selectors.drill_report import (
    ReportFacts,
    ReportFilter,
    ReportParamError,
    plans_with_owners,
    report_facts,
)
from restores.selectors.drill_report_export import csv_rows, report_json
from restores.services import access, reports
from restores.services.errors import ServiceError

BAD_REQUEST = 400


# The page draws the charts of this many plans (those with the most deficiencies first);
# the PDF draws every plan's.
CHART_PLANS = 8


def _facts(request: HttpRequest, selection: ReportFilter, page: int | None = None,
           digest: bool | None = None) -> ReportFacts:
    """The report's facts: one page of it (its runs, and the charts of the CHART_PLANS
    plans with the most deficiencies), or with no page all of it (the PDF, CSV, JSON)."""
    return report_facts(selection, scope=access.cluster_filter(request.user), page=page,
                        chart_plans=CHART_PLANS if page is not None else None, digest=digest)


def _plan_charts(facts: ReportFacts) -> list[tuple[Any, charts.ObjectiveCharts]]:
    """The charted plans (facts.series), and their RTO / RPO charts over the period."""
    rows = {row.plan.pk: row for row in facts.plans}
    return [(rows[pk], charts.run_charts(
        runs, rto_objective=rows[pk].plan.rto_objective_seconds,
        rpo_objective=rows[pk].plan.rpo_objective_seconds, chart_id=f"report-{pk}"))
        for pk, runs in facts.series.items() if pk in rows]


def _context(request: HttpRequest, facts: ReportFacts, **extra: Any) -> dict[str, Any]:
    sel = facts.selection
    signoff = facts.signoff
    printing = bool(extra.get("printing"))
    plan_charts = _plan_charts(facts)
    return {
        "facts": facts, "selection": sel, "tz": sel.tz, "plan_charts": plan_charts,
        "coverage_rows": facts.coverage if printing else facts.not_covered_shown,
        "plans_rows": plans_with_owners(facts.plans if printing else facts.plans_shown),
        "charted_all": len(plan_charts) == len(facts.stats.by_plan),
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
    facts = _facts(request, selection, page=page_number(request.GET.get("page")))
    return render(request, "restores/report.html", _context(request, facts))


def render_pdf(html: str, base_url: str) -> bytes:
    """The printed report: WeasyPrint, which fetches nothing but the page itself."""
    import weasyprint  # a heavy import only the PDF needs
    from weasyprint.urls import URLFetcher

    # Nothing but data: URLs: the page carries its own style and pictures (inline SVG).
    fetcher = URLFetcher(allowed_protocols={"data"})
    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()


def _export_selection(request: HttpRequest) -> ReportFilter | HttpResponse:
    """The filter of an export, or the 400 that says in words what is wrong with it."""
    try:
        return ReportFilter.from_query(request.GET)
    except ReportParamError as exc:
        return HttpResponse(exc.message, status=BAD_REQUEST,
                            content_type="text/plain; charset=utf-8")


def _attachment(response: HttpResponse, selection: ReportFilter, ext: str) -> HttpResponse:
    response["Content-Disposition"] = (
        f'attachment; filename="drill-report-{selection.first}-{selection.last}.{ext}"')
    return response


@require_GET
def drill_report_pdf(request: HttpRequest) -> HttpResponse:
    selection = _export_selection(request)
    if isinstance(selection, HttpResponse):
        return selection
    started = time.monotonic()
    facts = _facts(request, selection)
    html = render_to_string("restores/report_print.html",
                            _context(request, facts, printing=True), request=request)
    pdf = render_pdf(html, request.build_absolute_uri("/"))
    response = _attachment(HttpResponse(pdf, content_type="application/pdf"), selection, "pdf")
    response["Server-Timing"] = f"pdf;dur={(time.monotonic() - started) * 1000:.0f}"
    return response


@require_GET
def drill_report_csv(request: HttpRequest) -> HttpResponse:
    selection = _export_selection(request)
    if isinstance(selection, HttpResponse):
        return selection
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(_facts(request, selection),
                                       base_url=request.build_absolute_uri("/").rstrip("/")))
    return _attachment(HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8"),
                       selection, "csv")


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
    facts = _facts(request, selection, page=1, digest=True)  # the digest covers every run
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
    facts = _facts(request, selection, page=1, digest=True)  # the digest covers every run
    try:
        reports.report_sign(user=request.user, signoff_id=signoff.pk,
                            current_digest=facts.digest,
                            note=filter_text(request.POST.get("note"), max_length=2000))
    except ServiceError as exc:
        return render(request, "restores/report.html",
                      _context(request, facts, sign_error=exc.message), status=422)
    return redirect(_report_url(selection))
