"""Back up now, from the cluster page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from restores.forms.backups import BackupForm
from restores.services import backups
from restores.views.clusters import card_form
from restores.views.common import cluster_for


@require_POST
def backup_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = cluster_for(request, platform, namespace, name, "backup")
    form = BackupForm(request.POST, cluster=cluster)
    return card_form(request, cluster, form, lambda: backups.backup_request(
        cluster=cluster, repo_name=form.cleaned_data["repo"],
        backup_type=form.cleaned_data["backup_type"], user=request.user),
        region="backup-form", form_name="form")
