"""Thin function views: parse the request, call a form, a selector or a service, render."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from . import selectors, services
from .forms import BackupForm
from .models import Cluster, Operation


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
    cluster: Cluster, *, fingerprint: str, form: BackupForm | None = None,
    all_backups: bool = False,
) -> dict[str, object]:
    return {
        "cluster": cluster,
        "panels": selectors.cluster_repos(cluster, all_backups=all_backups),
        "all_backups": all_backups,
        "operations": selectors.cluster_operations(cluster),
        "form": form or BackupForm(cluster=cluster),
        "fingerprint": fingerprint,
        "poll_interval": settings.DR_POLL_INTERVAL,
    }


@require_GET
@vary_on_headers("HX-Request")
def cluster_detail(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _get_cluster(platform, namespace, name)
    fingerprint = selectors.cluster_fingerprint(cluster)
    if request.htmx and request.GET.get("v") == fingerprint:
        return HttpResponse(status=204)
    template = _partial(request, "restores/cluster.html", "live")
    context = _cluster_context(cluster, fingerprint=fingerprint,
                               all_backups=request.GET.get("backups") == "all")
    return render(request, template, context)


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
    context = _cluster_context(cluster, fingerprint=selectors.cluster_fingerprint(cluster),
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
         "poll_interval": settings.DR_POLL_INTERVAL},
    )
