"""Back up now, from the cluster page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from restores.forms.backups import BackupForm
from restores.selectors.clusters import (
    cluster_fingerprints,
)
from restores.services import (
    backups,
    errors,
)
from restores.views.clusters import cluster_context
from restores.views.common import answer_with_operation, cluster_for, partial


@require_POST
def backup_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name, "backup")
    form = BackupForm(request.POST, cluster=cluster)
    if form.is_valid():
        try:
            op = backups.backup_request(
                cluster=cluster,
                repo_name=form.cleaned_data["repo"],
                backup_type=form.cleaned_data["backup_type"],
                user=request.user,
            )
        except errors.ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            return answer_with_operation(request, op)
    template = partial(request, "restores/cluster.html", "backup-form")
    context = cluster_context(request, cluster,
                              fingerprints=cluster_fingerprints(cluster), form=form)
    return render(request, template, context, status=422)
