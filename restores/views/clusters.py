"""The cluster page and its poll, which re-renders only the regions whose content changed."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from restores.forms.backups import BackupForm
from restores.forms.drills import DrillForm
from restores.models import Cluster, Operation
from restores.selectors.clusters import (
    ClusterFingerprints,
    cluster_fingerprints,
    cluster_operations,
    cluster_repos,
    last_successful_drill,
)
from restores.views.common import (
    REFUSED,
    allowed_actions,
    answer_with_operation,
    cluster_for,
    partial,
    service_call,
)


def cluster_context(
    request: HttpRequest, cluster: Cluster, *, fingerprints: ClusterFingerprints,
    form: BackupForm | None = None, all_backups: bool = False,
    drill_form: DrillForm | None = None,
) -> dict[str, object]:
    return {
        "cluster": cluster,
        "panels": cluster_repos(cluster, all_backups=all_backups),
        "all_backups": all_backups,
        "operations": cluster_operations(cluster),
        "form": form or BackupForm(cluster=cluster),
        "drill_form": drill_form or DrillForm(cluster=cluster),
        "last_drill": last_successful_drill(cluster),
        "fingerprints": fingerprints,
        "poll_interval": settings.DR_POLL_INTERVAL,
        "can": allowed_actions(request, cluster),
    }


@require_GET
@vary_on_headers("HX-Request")
def cluster_detail(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name)
    fingerprints = cluster_fingerprints(cluster)
    all_backups = request.GET.get("backups") == "all"
    if request.htmx:
        return _cluster_poll(request, cluster, fingerprints, all_backups=all_backups)
    context = cluster_context(request, cluster, fingerprints=fingerprints,
                              all_backups=all_backups)
    return render(request, "restores/cluster.html", context)


def _cluster_poll(request: HttpRequest, cluster: Cluster,
                  fingerprints: ClusterFingerprints, *,
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
        "can": allowed_actions(request, cluster),
    }
    if status_changed:
        context["operations"] = cluster_operations(cluster)
    if backups_changed:
        context["panels"] = cluster_repos(cluster, all_backups=all_backups)
    return render(request, "restores/cluster.html#poll", context)


def card_form(request: HttpRequest, cluster: Cluster, form: forms.Form,
              submit: Callable[[], Operation], *, region: str, form_name: str,
              fields: dict[str, str | None] | None = None) -> HttpResponse:
    """A form of a card on the cluster page (back up now, run a drill): a valid POST the
    service accepts goes to the operation; anything else re-renders the card (422)."""
    if form.is_valid():
        op = service_call(form, submit, fields)
        if op is not REFUSED:
            return answer_with_operation(request, op)
    context = cluster_context(request, cluster, fingerprints=cluster_fingerprints(cluster),
                              **{form_name: form})
    return render(request, partial(request, "restores/cluster.html", region), context,
                  status=422)
