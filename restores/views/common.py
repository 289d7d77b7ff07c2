"""What the views share: loading a cluster once the user may act on it (404 unknown, 403
without the role, before any form is read), the form data of a POST, htmx partials, the
answer that goes to an operation, and an action's form page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django_htmx.http import HttpResponseClientRedirect

from restores.models import Cluster, Operation
from restores.services import (
    access,
    errors,
)


def cluster_for(request: HttpRequest, platform: str, namespace: str, name: str,
                 action: str = "view") -> Cluster:
    """The cluster, once the user may do `action` on it: 404 when unknown, 403 without the
    role (before any form is read)."""
    cluster = get_object_or_404(Cluster, platform=platform, namespace=namespace, name=name)
    access.require_cluster(request.user, action, cluster)
    return cluster


def posted(request: HttpRequest) -> Any:
    """The form data of a POST (an empty one too: it binds the form, which then says what
    is missing), None for a GET."""
    return request.POST if request.method == "POST" else None


def partial(request: HttpRequest, template: str, name: str) -> str:
    return f"{template}#{name}" if request.htmx else template


def allowed_actions(request: HttpRequest, cluster: Cluster) -> set[str]:
    """What the page offers this user on this cluster (the services check again)."""
    have = access.role(request.user, cluster.platform, cluster.namespace)
    return {action for action, needed in access.ACTIONS.items() if have >= needed}


def answer_with_operation(request: HttpRequest, op: Operation) -> HttpResponse:
    return HttpResponseClientRedirect(op.get_absolute_url()) if request.htmx else redirect(op)


def action_form(
    request: HttpRequest, cluster: Cluster, action: str, form: forms.Form,
    submit: Callable[[dict[str, Any]], Operation], context: dict[str, Any] | None = None,
) -> HttpResponse:
    """GET shows the action's form; a valid POST calls `submit` with the cleaned data and
    goes to the operation; a refusal comes back next to its field with a 422."""
    if request.method == "POST" and form.is_valid():
        try:
            return answer_with_operation(request, submit(form.cleaned_data))
        except errors.ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    template = partial(request, "restores/cluster_action.html", "action")
    return render(request, template, {"cluster": cluster, "action": action, "form": form,
                                      **(context or {})},
                  status=422 if request.method == "POST" else 200)
