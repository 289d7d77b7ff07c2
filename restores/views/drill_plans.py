"""Drill plans (create, see, edit) and a drill run's page (its evidence, and a deficiency's
follow-up). Operators and admins of the clusters a plan covers change it; viewers read."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from restores import checks, schedules
from restores.forms.drill_plans import PlanForm, RemediationForm, plan_initial
from restores.models import DrillPlan, DrillRun
from restores.services import access, drill_plans
from restores.views.common import REFUSED, service_call

PLAN_FIELDS = {"offset_seconds": "offset"}
RECENT_RUNS = 20


def _plan_visible(request: HttpRequest, plan: DrillPlan) -> None:
    if access.role(request.user, plan.platform, plan.namespace) < access.VIEWER:
        raise access.AccessDenied(access.DENIED.format(
            what="see drill plans", where=f"in {plan.platform}/{plan.namespace or '*'}",
            role="viewer", have="none"))


@require_http_methods(["GET", "POST"])
def drill_plan_new(request: HttpRequest) -> HttpResponse:
    access.require_somewhere(request.user, "drill")
    if request.method == "POST":
        # Where the plan would drill, before anything is read: out of scope is a 403.
        access.require(request.user, "drill", platform=request.POST.get("platform", ""),
                       namespace=request.POST.get("namespace", ""))
    form = PlanForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        plan = service_call(form, lambda: drill_plans.plan_save(
            answers=form.answers(), user=request.user), PLAN_FIELDS)
        if plan is not REFUSED:
            return redirect(plan)
    return render(request, "restores/drill_plan.html", {"form": form, "plan": None},
                  status=422 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
def drill_plan(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(DrillPlan.objects.select_related("owner"), pk=plan_id)
    _plan_visible(request, plan)
    may_edit = access.role(request.user, plan.platform, plan.namespace) >= access.OPERATOR
    if request.method == "POST":
        access.require(request.user, "drill", platform=plan.platform, namespace=plan.namespace)
        form = PlanForm(request.POST)
        if form.is_valid():
            saved = service_call(form, lambda: drill_plans.plan_save(
                answers=form.answers(), user=request.user, plan=plan,
                version=form.cleaned_data.get("version")), PLAN_FIELDS)
            if saved is not REFUSED:
                return redirect(saved)
    else:
        form = PlanForm(initial=plan_initial(plan))
    now = timezone.now()
    runs = list(plan.runs.select_related("cluster").order_by("-slot_at", "-id")[:RECENT_RUNS])
    context = {
        "plan": plan, "form": form if may_edit else None, "runs": runs,
        "checks": [checks.describe(c) for c in plan.checks],
        "next_slot": schedules.next_slot(plan.schedule, plan.time_zone, now),
        "period": schedules.period(plan.schedule, plan.time_zone, now),
    }
    return render(request, "restores/drill_plan.html", context,
                  status=422 if request.method == "POST" else 200)


def _run_for(request: HttpRequest, run_id: int, action: str) -> DrillRun:
    run = get_object_or_404(DrillRun.objects.select_related(
        "cluster", "plan", "operation", "remediation_owner"), pk=run_id)
    access.require(request.user, action, platform=run.cluster.platform,
                   namespace=run.cluster.namespace)
    return run


@require_http_methods(["GET"])
def drill_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id, "view")
    return _run_page(request, run, RemediationForm(initial={
        "owner": run.remediation_owner.get_username() if run.remediation_owner_id else "",
        "status": run.remediation_status or "open", "note": run.remediation_note}))


def _run_page(request: HttpRequest, run: DrillRun, form: RemediationForm,
              status: int = 200) -> HttpResponse:
    may_follow_up = run.deficient and access.role(
        request.user, run.cluster.platform, run.cluster.namespace) >= access.OPERATOR
    return render(request, "restores/drill_run.html", {
        "run": run, "evidence": run.evidence or {},
        "checks": ((run.evidence or {}).get("result") or {}).get("checks") or [],
        "form": form if may_follow_up else None}, status=status)


@require_POST
def drill_run_remediation(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id, "drill")
    if not run.deficient:
        raise Http404("only a failed or missed run has a follow-up")
    form = RemediationForm(request.POST)
    if form.is_valid():
        done = service_call(form, lambda: drill_plans.deficiency_update(
            run=run, user=request.user, owner=form.cleaned_data["owner"],
            note=form.cleaned_data["note"], status=form.cleaned_data["status"]))
        if done is not REFUSED:
            return redirect(run)
    return _run_page(request, run, form, status=422)
