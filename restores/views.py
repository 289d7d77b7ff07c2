"""Thin function views: parse the request, check the user's role, call a form, a selector or
a service, render. The role is checked before any form is read (`_cluster_for`), and the
service checks it again."""

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

from restores import selectors
from restores.forms import (
    BackupForm,
    ConfirmForm,
    DrillForm,
    InPlaceOptionsForm,
    PowerForm,
    PromoteForm,
    RejectForm,
    StandbyForm,
)
from restores.models import Cluster, Operation
from restores.models import auditlog as audit
from restores.parsing import filter_text, page_number
from restores.platforms.targets import InvalidRestoreOptions
from restores.services import (
    access,
    approvals,
    backups,
    errors,
    inplace,
    power,
    promotion,
    standbys,
)
from restores.tasks import backup_databases_fetch, cluster_sync_soon, send_quietly
from restores.wizard_forms import PointForm


def _cluster_for(request: HttpRequest, platform: str, namespace: str, name: str,
                 action: str = "view") -> Cluster:
    """The cluster, once the user may do `action` on it: 404 when unknown, 403 without the
    role (before any form is read)."""
    cluster = get_object_or_404(Cluster, platform=platform, namespace=namespace, name=name)
    access.require_cluster(request.user, action, cluster)
    return cluster


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST (an empty one too: it binds the form, which then says what
    is missing), None for a GET."""
    return request.POST if request.method == "POST" else None


def _partial(request: HttpRequest, template: str, name: str) -> str:
    return f"{template}#{name}" if request.htmx else template


def allowed_actions(request: HttpRequest, cluster: Cluster) -> set[str]:
    """What the page offers this user on this cluster (the services check again)."""
    have = access.role(request.user, cluster.platform, cluster.namespace)
    return {action for action, needed in access.ACTIONS.items() if have >= needed}


def denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: the role that is missing, in words; an htmx request gets it in the page's main
    region. A refused authenticated request is audited."""
    message = getattr(exception, "message", "") or "You may not do this."
    if isinstance(exception, access.AccessDenied) and request.user.is_authenticated:
        audit.audit_record(action=audit.ACCESS_DENIED, user=request.user,
                           params={"method": request.method, "path": request.path[:300]},
                           result=message)
    response = render(request, "403.html", {"message": message}, status=403)
    if request.htmx:
        response["HX-Retarget"] = "main"
        response["HX-Reswap"] = "innerHTML"
    return response


@require_GET
@vary_on_headers("HX-Request")
def fleet(request: HttpRequest) -> HttpResponse:
    fingerprint = selectors.fleet_fingerprint()
    if request.htmx and request.GET.get("v") == fingerprint:
        return HttpResponse(status=204)
    overview = selectors.fleet_overview(
        query=filter_text(request.GET.get("q")),
        busy_only=request.GET.get("busy") == "1",
        page=page_number(request.GET.get("page")),
        scope=access.cluster_filter(request.user),
    )
    template = _partial(request, "restores/fleet.html", "fleet-table")
    return render(request, template, {"fleet": overview, "fingerprint": fingerprint,
                                      "can_clone": access.best_role(request.user)
                                      >= access.OPERATOR})


def cluster_context(
    request: HttpRequest, cluster: Cluster, *, fingerprints: selectors.ClusterFingerprints,
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
        "can": allowed_actions(request, cluster),
    }


@require_GET
@vary_on_headers("HX-Request")
def cluster_detail(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _cluster_for(request, platform, namespace, name)
    fingerprints = selectors.cluster_fingerprints(cluster)
    all_backups = request.GET.get("backups") == "all"
    if request.htmx:
        return _cluster_poll(request, cluster, fingerprints, all_backups=all_backups)
    context = cluster_context(request, cluster, fingerprints=fingerprints,
                              all_backups=all_backups)
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
        "can": allowed_actions(request, cluster),
    }
    if status_changed:
        context["operations"] = selectors.cluster_operations(cluster)
    if backups_changed:
        context["panels"] = selectors.cluster_repos(cluster, all_backups=all_backups)
    return render(request, "restores/cluster.html#poll", context)


@require_POST
def backup_create(request: HttpRequest, platform: str, namespace: str, name: str) -> HttpResponse:
    cluster = _cluster_for(request, platform, namespace, name, "backup")
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
            return _answer(request, op)
    template = _partial(request, "restores/cluster.html", "backup-form")
    context = cluster_context(request, cluster,
                              fingerprints=selectors.cluster_fingerprints(cluster), form=form)
    return render(request, template, context, status=422)


def _operation_for(request: HttpRequest, operation_id: uuid.UUID, action: str = "view"
                   ) -> Operation:
    op = get_object_or_404(Operation.objects.select_related(
        "cluster", "requested_by", "approved_by"), pk=operation_id)
    access.require_cluster(request.user, action, op.cluster)
    return op


def _operation_context(request: HttpRequest, op: Operation,
                       reject_form: RejectForm | None = None,
                       decision_error: str = "") -> dict[str, Any]:
    waiting = op.status == Operation.Status.AWAITING_APPROVAL
    own = op.requested_by_id is not None and op.requested_by_id == request.user.pk
    return {
        "op": op, "events": selectors.operation_events(op),
        "poll_interval": settings.DR_OPERATION_POLL_INTERVAL,
        "may_approve": waiting and not own and access.allowed(
            request.user, "approve", platform=op.cluster.platform,
            namespace=op.cluster.namespace),
        "may_withdraw": waiting and own,
        "reject_form": reject_form or RejectForm(),
        "decision_error": decision_error,
    }


@require_GET
@vary_on_headers("HX-Request")
def operation_detail(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    op = _operation_for(request, operation_id)
    if request.htmx and request.GET.get("v") == str(op.version):
        return HttpResponse(status=204)
    template = _partial(request, "restores/operation.html", "progress")
    return render(request, template, _operation_context(request, op))


@require_POST
def operation_approve(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    op = _operation_for(request, operation_id, "approve")
    try:
        op = approvals.operation_approve(operation=op, user=request.user)
    except errors.ServiceError as exc:
        op.refresh_from_db()
        return render(request, _partial(request, "restores/operation.html", "progress"),
                      _operation_context(request, op, decision_error=exc.message), status=422)
    return _answer(request, op)


@require_POST
def operation_reject(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Reject a waiting request (an admin), or withdraw one's own."""
    op = _operation_for(request, operation_id)
    own = op.requested_by_id is not None and op.requested_by_id == request.user.pk
    if not own:
        access.require_cluster(request.user, "approve", op.cluster)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            op = approvals.operation_reject(operation=op, user=request.user,
                                            reason=form.cleaned_data["reason"])
        except errors.ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return _answer(request, op)
    op.refresh_from_db()
    return render(request, _partial(request, "restores/operation.html", "progress"),
                  _operation_context(request, op, reject_form=form), status=422)


def _answer(request: HttpRequest, op: Operation) -> HttpResponse:
    return HttpResponseClientRedirect(op.get_absolute_url()) if request.htmx else redirect(op)


def _action_form(
    request: HttpRequest, cluster: Cluster, action: str, form: forms.Form,
    submit: Callable[[dict[str, Any]], Operation], context: dict[str, Any] | None = None,
) -> HttpResponse:
    """GET shows the action's form; a valid POST calls `submit` with the cleaned data and
    goes to the operation; a refusal comes back next to its field with a 422."""
    if request.method == "POST" and form.is_valid():
        try:
            return _answer(request, submit(form.cleaned_data))
        except errors.ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    template = _partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {"cluster": cluster, "action": action, "form": form,
                                      **(context or {})},
                  status=422 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_power(request: HttpRequest, platform: str, namespace: str, name: str,
                  action: str) -> HttpResponse:
    """Shut down or start, with the cluster's name typed: the page says what stops."""
    if action not in ("shutdown", "start"):
        return HttpResponse(status=404)
    cluster = _cluster_for(request, platform, namespace, name, action)
    shutdown = action == "shutdown"
    context = {"followers": selectors.standbys_of(cluster) if shutdown else [],
               "promoted": [] if shutdown else promotion.promoted_successors(cluster)}
    return _action_form(
        request, cluster, action, PowerForm(_posted(request)),
        lambda d: power.power_request(
            cluster=cluster, shutdown=shutdown, user=request.user, confirm=d["confirm"],
            acknowledge_split_brain=d["acknowledge"],
        ), context,
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_promote(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = _cluster_for(request, platform, namespace, name, "promote")
    return _action_form(
        request, cluster, "promote", PromoteForm(_posted(request)),
        lambda d: promotion.promote_request(
            cluster=cluster, confirm=d["confirm"], user=request.user,
            primary_gone=d["primary_gone"],
        ),
        {"offer_override": promotion.promotion_override_offered(cluster),
         "primary": promotion.standby_primary(cluster)},
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_standby(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    cluster = _cluster_for(request, platform, namespace, name, "standby")
    return _action_form(
        request, cluster, "standby", StandbyForm(_posted(request), cluster=cluster),
        lambda d: standbys.standby_request(
            source=cluster, name=d["name"], namespace=d.get("namespace") or namespace,
            repo_name=d["repo"], user=request.user,
        ),
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def cluster_restore(request: HttpRequest, platform: str, namespace: str,
                    name: str) -> HttpResponse:
    """In-place restore (PITR, or only some databases) with a typed confirmation; by default
    the current state is backed up first."""
    cluster = _cluster_for(request, platform, namespace, name, "restore_in_place")
    repo = cluster.repositories.filter(backups__isnull=False).order_by("name").first()
    backups = list(repo.backups.order_by("-stopped_at")) if repo else []
    newest = backups[0] if backups else None
    if request.method == "GET":
        # The window shown comes from the last read of the repos, which may be minutes old:
        # ask for a fresh one (a point a minute ago should not be refused as too late).
        cluster_sync_soon(cluster)
        if newest is not None and newest.databases is None:
            send_quietly(backup_databases_fetch, newest.pk)
    data = _posted(request)
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
        except InvalidRestoreOptions as exc:
            form.add_error(None, exc.message)
        else:
            return _answer(request, op)
    status = 422 if request.method == "POST" else 200
    template = _partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {
        "cluster": cluster, "action": "restore", "form": form, "options": options,
        "confirm": confirm, "repo": repo, "newest": newest,
        "estimate": selectors.in_place_estimate(cluster, newest),
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
