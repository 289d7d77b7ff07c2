"""The clone / PITR wizard's views: one URL per step of a draft kept in the database."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from restores.forms.clones import CloudSourceForm, SourceForm, TargetForm
from restores.forms.points import PointForm
from restores.models import CloneDraft, Cluster, requests
from restores.parsing import whole_number
from restores.selectors.clusters import clone_sources, repo_timeline
from restores.services import access, clones
from restores.services.dispatch import cluster_sync_soon, set_databases_soon
from restores.services.errors import ServiceError
from restores.views.common import REFUSED, service_call

TEMPLATE = "restores/clone.html"
STEPS = [s.value for s in CloneDraft.STEPS]


SOURCE_UNKNOWN = "Pick a cluster the console knows as the source."


def _draft_for(request: HttpRequest, draft_id: uuid.UUID) -> CloneDraft:
    """The draft, once the user may clone from its source (403 otherwise)."""
    draft = get_object_or_404(CloneDraft.objects.select_related("source", "operation"),
                              pk=draft_id)
    clones.require_draft_access(draft, request.user)
    return draft


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _step_url(draft: CloneDraft, step: str) -> str:
    return reverse("restores:clone_step", kwargs={"draft_id": draft.id, "step": step})


@require_POST
def clone_start(request: HttpRequest) -> HttpResponse:
    """A new draft: from a cluster's page (its id as `source`), or with no source yet (the
    Fleet page). A `source` that names no cluster the console knows starts nothing."""
    raw = request.POST.get("source", "")
    source = None
    if raw:
        pk = whole_number(raw, minimum=1)
        source = Cluster.objects.filter(pk=pk, present=True).first() if pk else None
        if source is None:
            return HttpResponse(SOURCE_UNKNOWN, status=422, content_type="text/plain")
    access.require_somewhere(request.user, "clone")
    draft = clones.draft_create(user=request.user, source=source)
    return _go(request, _step_url(draft, "source"))


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def clone_step(request: HttpRequest, draft_id: uuid.UUID, step: str) -> HttpResponse:
    if step not in STEPS:
        raise Http404("no such step")
    draft = _draft_for(request, draft_id)
    if draft.submitted and draft.operation:
        return redirect(draft.operation)
    if STEPS.index(step) > STEPS.index(draft.reached):
        return redirect(_step_url(draft, draft.reached))
    handler = {"source": _source, "point": _point, "target": _target, "review": _review}[step]
    return handler(request, draft)


def _render(request: HttpRequest, draft: CloneDraft, step: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    template = f"{TEMPLATE}#step" if request.htmx else TEMPLATE
    base = {"draft": draft, "step": step, "steps": STEPS,
            "reached_index": STEPS.index(draft.reached), "step_index": STEPS.index(step)}
    return render(request, template, {**base, **context}, status=status)


def _cloud_form(draft: CloneDraft, data: Any = None) -> CloudSourceForm | None:
    """The cloud-repo source form, when the Kubernetes platform is enabled."""
    if not clones.cloud_source_enabled():
        return None
    return CloudSourceForm(data, initial=CloudSourceForm.initial_from(draft.cloud),
                           namespaces=list(settings.DR_KUBE_NAMESPACES))


def _sources(request: HttpRequest) -> QuerySet[Cluster]:
    """The clusters this user may clone from."""
    return clone_sources(access.cluster_filter(request.user, least=access.OPERATOR))


def _source(request: HttpRequest, draft: CloneDraft) -> HttpResponse:
    if request.method == "GET":
        initial = {"source": draft.source_id, "repo": draft.repo_name}
        form = SourceForm(initial=initial, source=draft.source, sources=_sources(request))
        return _render(request, draft, "source", {"form": form, "cloud_form": _cloud_form(
            draft), "cloud_open": bool(draft.cloud)})
    if request.POST.get("origin") == "cloud":
        return _cloud_source(request, draft)
    form = SourceForm(request.POST, source=draft.source, sources=_sources(request))
    context = {"form": form, "cloud_form": _cloud_form(draft)}
    if request.POST.get("_preview"):  # the source changed: offer its repos
        form.errors.clear()
        return _render(request, draft, "source", context)
    if form.is_valid() and service_call(form, lambda: clones.draft_save_source(
            draft=draft, cluster=form.cleaned_data["source"],
            repo_name=form.cleaned_data["repo"], user=request.user)) is not REFUSED:
        return _go(request, _step_url(draft, "point"))
    return _render(request, draft, "source", context, status=422)


def _cloud_source(request: HttpRequest, draft: CloneDraft) -> HttpResponse:
    cloud_form = _cloud_form(draft, request.POST)
    if cloud_form is None:
        raise Http404("the kubernetes platform is not enabled")
    if cloud_form.is_valid():
        d = cloud_form.cleaned_data
        answers = clones.CloudAnswers(
            namespace=d["namespace"], storage=d["storage"], bucket=d["bucket"],
            endpoint=d["endpoint"] if d["storage"] == "s3" else "",
            region=d["region"] if d["storage"] == "s3" else "",
            path=d["path"], repo_name=d["repo_name"], stanza=d["stanza"],
            configuration_secret=d["configuration_secret"],
            postgres_version=d["postgres_version"], global_options=d["global_options"],
            backups_to_cloud=d["backups_to_cloud"],
        )
        if service_call(cloud_form, lambda: clones.draft_save_cloud_source(
                draft=draft, answers=answers, user=request.user)) is not REFUSED:
            return _go(request, _step_url(draft, "point"))
    form = SourceForm(initial={"source": draft.source_id, "repo": draft.repo_name},
                      source=draft.source, sources=_sources(request))
    return _render(request, draft, "source", {"form": form, "cloud_form": cloud_form,
                                              "cloud_open": True}, status=422)


def _point_context(draft: CloneDraft, form: PointForm) -> dict[str, Any]:
    repo = clones.draft_repo(draft)
    if repo is None:  # a cloud repo: no window to show
        return {"form": form, "cloud_origin": requests.cloud_source(draft.cloud).describe(),
                "cloud_unchecked": clones.CLOUD_UNCHECKED}
    backups = list(repo.backups.order_by("-stopped_at"))
    # The window the rules check against comes from the last sync: refresh it soon, so a
    # WAL switch a minute ago is taken into account.
    cluster_sync_soon(draft.source)
    return {"form": form, "repo": repo, "timeline": repo_timeline(repo, backups),
            "poll_interval": settings.DR_POLL_INTERVAL}


def _point(request: HttpRequest, draft: CloneDraft) -> HttpResponse:
    repo = clones.draft_repo(draft)
    if not clones.draft_ready_for_point(draft):
        return redirect(_step_url(draft, "source"))
    backups = list(repo.backups.order_by("-stopped_at")) if repo else []
    kw = {"backups": backups, "typed_label": repo is None}
    if request.method == "GET":
        if not draft.point:
            form = PointForm(**kw)
            return _render(request, draft, "point", _point_context(draft, form))
        # Show the stored answers checked again: the window may have moved since.
        form = PointForm(_stored_point(draft), **kw)
        context = _point_context(draft, form)
        if repo and form.is_valid() and form.target is not None:
            context["verdict"] = clones.point_verdict(repo, form.target)
        return _render(request, draft, "point", context)
    form = PointForm(request.POST, **kw)
    preview = bool(request.POST.get("_preview"))
    target = form.target if form.is_valid() else None
    if target is not None and not preview and service_call(form, lambda: clones.draft_save_point(
            draft=draft, point=target, display=form.display(), user=request.user),
            {"time": "clock"}) is not REFUSED:
        return _go(request, _step_url(draft, "target"))
    context = _point_context(draft, form)
    if repo and form.is_valid() and form.target is not None:
        context["verdict"] = clones.point_verdict(repo, form.target)
    return _render(request, draft, "point", context,
                   status=200 if preview and form.is_valid() else 422)


def _stored_point(draft: CloneDraft) -> dict[str, Any]:
    data = {k: v for k, v in draft.point.items() if k != "time" and v not in ("", None)}
    if data.get("exclusive") is False:
        data.pop("exclusive")
    return data


def _target(request: HttpRequest, draft: CloneDraft) -> HttpResponse:
    backup = clones.base_backup(draft)
    set_databases_soon(backup)
    options = clones.target_form_options(draft, backup)
    namespace = draft.source.namespace if draft.source else draft.cloud["namespace"]
    initial = {"namespace": namespace, "storage": "1Gi", **draft.target,
               **_job_initial(draft.target.get("restore_job") or {})}
    if draft.cloud:
        initial["db_include"] = " ".join(draft.target.get("db_include") or ())
    if request.method == "GET":
        form = TargetForm(initial=initial, **options)
        return _render(request, draft, "target", _target_context(form, backup, draft))
    form = TargetForm(request.POST, initial=initial, **options)
    if form.is_valid():
        d = form.cleaned_data
        answers = clones.TargetAnswers(
            name=d["name"], namespace=d["namespace"], storage=d["storage"],
            process_max=d.get("process_max"), db_include=tuple(d.get("db_include") or ()),
            restore_job=form.restore_job(),
        )
        if service_call(form, lambda: clones.draft_save_target(
                draft=draft, answers=answers, user=request.user)) is not REFUSED:
            return _go(request, _step_url(draft, "review"))
    return _render(request, draft, "target", _target_context(form, backup, draft),
                   status=422)


def _job_initial(job: dict[str, Any]) -> dict[str, Any]:
    values = {f"{k}_request": v for k, v in job.get("requests") or ()}
    values |= {f"{k}_limit": v for k, v in job.get("limits") or ()}
    values["node_labels"] = "\n".join(f"{k}={v}" for k, v in job.get("node_labels") or ())
    values["toleration"] = job.get("toleration") or ""
    return values


def _target_context(form: TargetForm, backup: Any, draft: CloneDraft) -> dict[str, Any]:
    return {"form": form, "base_backup": backup, "db_warning": clones.DB_INCLUDE_WARNING,
            "poll_interval": settings.DR_POLL_INTERVAL, "typed_databases": bool(draft.cloud),
            "cloud_db_warning": clones.CLOUD_DB_UNCHECKED}


def _review(request: HttpRequest, draft: CloneDraft) -> HttpResponse:
    try:
        review = clones.draft_review(draft)
    except ServiceError as exc:
        return _render(request, draft, "review", {"error": exc.message}, status=422)
    return _render(request, draft, "review", {"review": review})


@require_POST
def clone_submit(request: HttpRequest, draft_id: uuid.UUID) -> HttpResponse:
    draft = _draft_for(request, draft_id)
    version = whole_number(request.POST.get("version"), maximum=2**31 - 1)
    try:
        op = clones.draft_submit(draft=draft, user=request.user,
                                 version=-1 if version is None else version)
    except ServiceError as exc:
        try:
            review = clones.draft_review(draft)
        except ServiceError:
            review = None
        return _render(request, draft, "review", {"review": review, "error": exc.message},
                       status=422)
    return _go(request, op.get_absolute_url())
