"""What the views share: loading a cluster once the user may act on it (404 unknown, 403
without the role, before any form is read), the form data of a POST, htmx partials, the
answer that goes to an operation, and an action's form page."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from restores.models import Cluster, Operation
from restores.services import access, errors

T = TypeVar("T")


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
    """What the page offers this user on this cluster (the services check again); a drill's
    scratch copy is only ever seen."""
    if cluster.drill:
        return {"view"}
    have = access.role(request.user, cluster.platform, cluster.namespace)
    return {action for action, needed in access.ACTIONS.items() if have >= needed}


def answer_with_operation(request: HttpRequest, op: Operation) -> HttpResponse:
    return HttpResponseClientRedirect(op.get_absolute_url()) if request.htmx else redirect(op)


class _Refused:
    def __repr__(self) -> str:
        return "REFUSED"


# What service_call answers when the service said no (a service may return None).
REFUSED: Any = _Refused()


def service_call(form: forms.Form, call: Callable[[], T],
                 fields: dict[str, str | None] | None = None) -> T:
    """`call()`, or REFUSED with the refusal next to the form's field (`fields` maps a
    service's field name to the form's; an unknown one goes above the form)."""
    try:
        return call()
    except errors.ServiceError as exc:
        field = (fields or {}).get(exc.field or "", exc.field)
        form.add_error(field if field in form.fields else None, exc.message)
        return REFUSED


@dataclasses.dataclass(frozen=True)
class Action:
    """What a cluster action's page is: its form, what a valid POST asks for, the page's
    other facts."""

    form: forms.Form
    submit: Callable[[dict[str, Any]], Operation]
    context: dict[str, Any] = dataclasses.field(default_factory=dict)


def cluster_action(action: str | None = None) -> Callable[[Callable[..., Action]],
                                                          Callable[..., HttpResponse]]:
    """A view of an action on one cluster (GET its form, POST it): the cluster loaded for
    the role `action` needs (None: the view's `action` argument names it), then the page.
    A valid POST goes to the operation; a refusal comes back next to its field (422)."""

    def wrap(build: Callable[..., Action]) -> Callable[..., HttpResponse]:
        @require_http_methods(["GET", "POST"])
        @vary_on_headers("HX-Request")
        @functools.wraps(build)
        def view(request: HttpRequest, platform: str, namespace: str, name: str,
                 **kwargs: Any) -> HttpResponse:
            verb = action or str(kwargs.get("action"))
            if verb not in access.ACTIONS:
                raise Http404("no such action")
            cluster = cluster_for(request, platform, namespace, name, verb)
            page = build(request, cluster, **kwargs)
            if request.method == "POST" and page.form.is_valid():
                op = service_call(page.form, lambda: page.submit(page.form.cleaned_data))
                if op is not REFUSED:
                    return answer_with_operation(request, op)
            template = partial(request, "restores/cluster_action.html", "action")
            return render(request, template, {"cluster": cluster, "action": verb,
                                              "form": page.form, **page.context},
                          status=422 if request.method == "POST" else 200)

        return view

    return wrap
