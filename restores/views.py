"""Thin function views: parse the request, call a form, a selector or a service, render."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from . import cluster_ops, selectors, services
from .forms import BackupForm, ConfirmForm, DrillForm, StandbyForm
from .models import Cluster, Operation
from .platforms.restore_options import InvalidRestoreOptions
from .tasks import cluster_sync_soon
from .wizard_forms import PointForm


def _get_cluster(platform: str, namespace: str, name: str) -> Cluster:
    return get_object_or_404(Cluster, platform=platform, namespace=namespace, name=name)


def _partial(request: HttpRequest, template: str, name: str) -> str:
    return f"{template}#{name}" if request.htmx else template


@require_GET
@vary_on_headers("HX-Request")
def fleet(request: HttpRequest) -> HttpResponse:
    fingerprint = selectors.fleet_fingerprint()
    if request.htmx and request.GET.get("v") == fingerprint:
        return HttpResponse(status=204)
    page = request.GET.get("page", "1")
    overview = selectors.fleet_overview(
        query=request.GET.get("q", "").strip()[:100],
        busy_only=request.GET.get("busy") == "1",
        page=int(page) if page.isdigit() else 1,
    )
    template = _partial(request, "restores/fleet.html", "fleet-table")
    return render(request, template, {"fleet": overview, "fingerprint": fingerprint})


def _cluster_context(
    cluster: Cluster, *, fingerprints: selectors.ClusterFingerprints,
    form: BackupForm | None = None, all_backups: bool = False,
    drill_form: DrillForm | None = None,
) -> dict[str, object]:
    return {
        "cluster": cluster,
        "panels": selectors.cluster_repos(cluster, all_backups=all_backups),
        "all_backups": all_backups,
        "operations": selectors.cluster_operations(cluster),
        "form": form or BackupForm(cluster=cluster),
        "drill_form": drill_form or DrillForm(cluster=cluster),
        "last_drill": selectors.last_successful_drill(cluster),
        "fingerprints": fingerprints,
        "poll_interval": settings.DR_POLL_INTERVAL,
    }


@require_GET
@vary_on_headers("HX-Request")
def cluster_detail(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _get_cluster(platform, namespace, name)
    fingerprints = selectors.cluster_fingerprints(cluster)
    all_backups = request.GET.get("backups") == "all"
    if request.htmx:
        return _cluster_poll(request, cluster, fingerprints, all_backups=all_backups)
    context = _cluster_context(cluster, fingerprints=fingerprints, all_backups=all_backups)
    return render(request, "restores/cluster.html", context)


def _cluster_poll(request: HttpRequest, cluster: Cluster,
                  fingerprints: selectors.ClusterFingerprints, *,
                  all_backups: bool) -> HttpResponse:
    """The page's poll sends each region's fingerprint (`s`: state and operations, `b`:
    repos and backups): 204 when both still match; otherwise a fresh poller with only the
    regions that changed, swapped in out of band."""
    status_changed = request.GET.get("s") != fingerprints.status
    backups_changed = request.GET.get("b") != fingerprints.backups
    if not (status_changed or backups_changed):
        return HttpResponse(status=204)
    context: dict[str, object] = {
        "cluster": cluster, "fingerprints": fingerprints, "all_backups": all_backups,
        "poll_interval": settings.DR_POLL_INTERVAL, "oob": True,
        "status_changed": status_changed, "backups_changed": backups_changed,
    }
    if status_changed:
        context["operations"] = selectors.cluster_operations(cluster)
    if backups_changed:
        context["panels"] = selectors.cluster_repos(cluster, all_backups=all_backups)
    return render(request, "restores/cluster.html#poll", context)


@require_POST
def backup_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _get_cluster(platform, namespace, name)
    form = BackupForm(request.POST, cluster=cluster)
    if form.is_valid():
        try:
            op = services.backup_request(
                cluster=cluster,
                repo_name=form.cleaned_data["repo"],
                backup_type=form.cleaned_data["backup_type"],
                user=request.user,
            )
        except services.ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            if request.htmx:
                return HttpResponseClientRedirect(op.get_absolute_url())
            return redirect(op)
    template = _partial(request, "restores/cluster.html", "backup-form")
    context = _cluster_context(cluster, fingerprints=selectors.cluster_fingerprints(cluster),
                               form=form)
    return render(request, template, context, status=422)


@require_GET
@vary_on_headers("HX-Request")
def operation_detail(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    op = get_object_or_404(Operation.objects.select_related("cluster", "requested_by"),
                           pk=operation_id)
    if request.htmx and request.GET.get("v") == str(op.version):
        return HttpResponse(status=204)
    template = _partial(request, "restores/operation.html", "progress")
    return render(
        request,
        template,
        {"op": op, "events": selectors.operation_events(op),
         "poll_interval": settings.DR_OPERATION_POLL_INTERVAL},
    )


def _answer(request: HttpRequest, op: Operation) -> HttpResponse:
    return HttpResponseClientRedirect(op.get_absolute_url()) if request.htmx else redirect(op)


def _refused(request: HttpRequest, cluster: Cluster, action: str, message: str,
             form: object = None) -> HttpResponse:
    template = _partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {"cluster": cluster, "action": action, "error": message,
                                      "form": form}, status=422)


@require_POST
def cluster_power(request: HttpRequest, platform: str, namespace: str, name: str,
                  action: str) -> HttpResponse:
    """Shut down or start: one click, no typed confirmation (both are reversible)."""
    cluster = _get_cluster(platform, namespace, name)
    if action not in ("shutdown", "start"):
        return HttpResponse(status=404)
    try:
        op = cluster_ops.power_request(cluster=cluster, shutdown=action == "shutdown",
                                       user=request.user)
    except services.ServiceError as exc:
        return _refused(request, cluster, action, exc.message)
    return _answer(request, op)


def _action_form(
    request: HttpRequest, cluster: Cluster, action: str, form: forms.Form,
    submit: Callable[[dict[str, Any]], Operation],
) -> HttpResponse:
    """GET shows the action's form; a valid POST calls `submit` with the cleaned data and
    goes to the operation; a refusal comes back next to its field with a 422."""
    if request.method == "POST" and form.is_valid():
        try:
            return _answer(request, submit(form.cleaned_data))
        except services.ServiceError as exc:
            form.add_error(exc.field, exc.message)
    template = _partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {"cluster": cluster, "action": action, "form": form},
                  status=422 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_promote(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = _get_cluster(platform, namespace, name)
    return _action_form(
        request, cluster, "promote", ConfirmForm(request.POST or None),
        lambda d: cluster_ops.promote_request(
            cluster=cluster, confirm=d["confirm"], user=request.user,
            primary_gone=request.POST.get("primary_gone") == "yes",
        ),
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_standby(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = _get_cluster(platform, namespace, name)
    return _action_form(
        request, cluster, "standby", StandbyForm(request.POST or None, cluster=cluster),
        lambda d: cluster_ops.standby_request(
            source=cluster, name=d["name"], namespace=d.get("namespace") or namespace,
            repo_name=d["repo"], user=request.user,
        ),
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_restore(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    """In-place restore (PITR, or only some databases) with a typed confirmation."""
    cluster = _get_cluster(platform, namespace, name)
    if request.method == "GET":
        # The window shown comes from the last read of the repos, which may be minutes old:
        # ask for a fresh one (a point a minute ago should not be refused as too late).
        cluster_sync_soon(cluster)
    repo = cluster.repositories.filter(backups__isnull=False).order_by("name").first()
    backups = list(repo.backups.order_by("-stopped_at")) if repo else []
    form = PointForm(request.POST or None, backups=backups)
    confirm = ConfirmForm(request.POST or None)
    databases = [d.strip() for d in request.POST.get("db_include", "").split(",") if d.strip()]
    if request.method == "POST" and form.is_valid() and confirm.is_valid() and form.target:
        try:
            op = cluster_ops.restore_in_place_request(
                cluster=cluster, repo_name=repo.name if repo else "", point=form.target,
                user=request.user, confirm=confirm.cleaned_data["confirm"],
                db_include=tuple(databases),
            )
        except services.ServiceError as exc:
            if exc.field == "confirm":
                confirm.add_error("confirm", exc.message)
            else:
                form.add_error({"time": "clock", "repo": None}.get(exc.field or "", exc.field),
                               exc.message)
        except InvalidRestoreOptions as exc:
            form.add_error(None, exc.message)
        else:
            return _answer(request, op)
    status = 422 if request.method == "POST" else 200
    template = _partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {"cluster": cluster, "action": "restore", "form": form,
                                      "confirm": confirm, "repo": repo,
                                      "db_include": ", ".join(databases)}, status=status)
