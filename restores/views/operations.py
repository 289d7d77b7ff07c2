"""An operation's page and its poll; approving and rejecting a request under the two-person
rule."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from restores.forms.approvals import RejectForm
from restores.models import Operation
from restores.selectors.operations import operation_events
from restores.services import access, approvals, errors
from restores.views.common import answer_with_operation, partial


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
        "op": op, "events": operation_events(op),
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
    template = partial(request, "restores/operation.html", "progress")
    return render(request, template, _operation_context(request, op))


@require_POST
def operation_approve(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    op = _operation_for(request, operation_id, "approve")
    try:
        op = approvals.operation_approve(operation=op, user=request.user)
    except errors.ServiceError as exc:
        op.refresh_from_db()
        return render(request, partial(request, "restores/operation.html", "progress"),
                      _operation_context(request, op, decision_error=exc.message), status=422)
    return answer_with_operation(request, op)


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
            return answer_with_operation(request, op)
    op.refresh_from_db()
    return render(request, partial(request, "restores/operation.html", "progress"),
                  _operation_context(request, op, reject_form=form), status=422)
