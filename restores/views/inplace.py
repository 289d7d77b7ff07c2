"""The in-place restore form: the point, some databases or all, the backup of the current
state first, the typed name; and the review of what happens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from restores.forms.confirm import ConfirmForm
from restores.forms.inplace import InPlaceOptionsForm
from restores.forms.points import PointForm
from restores.selectors.inplace import in_place_estimate
from restores.services import errors, inplace
from restores.services.dispatch import cluster_sync_soon, set_databases_soon
from restores.views.common import answer_with_operation, cluster_for, partial, posted


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_restore(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    """In-place restore (PITR, or only some databases) with a typed confirmation; by default
    the current state is backed up first."""
    cluster = cluster_for(request, platform, namespace, name, "restore_in_place")
    repo = cluster.repositories.filter(backups__isnull=False).order_by("name").first()
    backups = list(repo.backups.order_by("-stopped_at")) if repo else []
    newest = backups[0] if backups else None
    if request.method == "GET":
        # The window shown comes from the last read of the repos, which may be minutes old:
        # ask for a fresh one (a point a minute ago should not be refused as too late).
        cluster_sync_soon(cluster)
        set_databases_soon(newest)
    data = posted(request)
    form = PointForm(data, backups=backups)
    options = InPlaceOptionsForm(data, databases=(newest.databases or []) if newest else [],
                                 initial={"safety_backup": True})
    confirm = ConfirmForm(data)
    if request.method == "POST" and form.is_valid() and options.is_valid() \
            and confirm.is_valid() and form.target:
        try:
            op = inplace.restore_in_place_request(
                cluster=cluster, repo_name=repo.name if repo else "", point=form.target,
                user=request.user, confirm=confirm.cleaned_data["confirm"],
                db_include=tuple(options.cleaned_data["db_include"]),
                safety_backup=options.cleaned_data["safety_backup"],
            )
        except errors.ServiceError as exc:
            _restore_error(exc, form, options, confirm)
        else:
            return answer_with_operation(request, op)
    status = 422 if request.method == "POST" else 200
    template = partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {
        "cluster": cluster, "action": "restore", "form": form, "options": options,
        "confirm": confirm, "repo": repo, "newest": newest,
        "estimate": in_place_estimate(cluster, newest),
    }, status=status)


def _restore_error(exc: errors.ServiceError, form: PointForm, options: InPlaceOptionsForm,
                   confirm: ConfirmForm) -> None:
    """A refusal of the in-place restore service, next to the field it is about."""
    if exc.field == "confirm":
        confirm.add_error("confirm", exc.message)
    elif exc.field == "db_include":
        options.add_error("db_include", exc.message)
    else:
        field = {"time": "clock", "repo": None}.get(exc.field or "", exc.field)
        form.add_error(field if field in form.fields else None, exc.message)
