"""Kubernetes `Status` objects and the exception that carries one to the HTTP layer.

Shapes and messages follow k8s.io/apimachinery/pkg/api/errors (NewNotFound, NewConflict, ...).
"""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

MODIFIED = (
    "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; "
    "please apply your changes to the latest version and try again"
)
UNKNOWN_MEDIA = (
    "the body of the request was in an unknown format - accepted media types include: "
    "{types}"
)


def status(
    code: int,
    message: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `Status` with status Failure, as every API error response carries."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, "Unknown"),
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """An API error response: the HTTP code and the Status body."""

    def __init__(self, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body["message"])
        self.body = body
        self.code = int(body["code"])
        self.headers = headers or {}


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    return ApiError(
        status(404, f'{resource} "{name}" not found', details=_details(name, group, plural))
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    return ApiError(
        status(
            409,
            f'{resource} "{name}" already exists',
            "AlreadyExists",
            _details(name, group, plural),
        )
    )


def conflict(plural: str, group: str, name: str, message: str | None = None) -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    text = MODIFIED.format(resource=resource, name=name)
    if message:
        text = f'Operation cannot be fulfilled on {resource} "{name}": {message}'
    return ApiError(status(409, text, "Conflict", _details(name, group, plural)))


def invalid(
    kind: str, group: str, name: str, causes: list[dict[str, str]]
) -> ApiError:
    """422 Invalid, as `errors.NewInvalid` builds it from field errors."""
    qualified = f"{kind}.{group}" if group else kind
    texts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        status(
            422,
            f'{qualified} "{name}" is invalid: {joined}',
            "Invalid",
            _details(name, group, kind, causes=causes),
        )
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, message, "BadRequest"))


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        status(405, f"the server does not allow this method on the requested resource ({method})",
               details={})
    )


def unsupported_media(types: list[str]) -> ApiError:
    return ApiError(status(415, UNKNOWN_MEDIA.format(types=", ".join(types))))


def no_route() -> ApiError:
    return ApiError(status(404, "the server could not find the requested resource", details={}))


def expired(message: str) -> dict[str, Any]:
    """The 410 Gone Status a watch reports for a resourceVersion older than the window."""
    return status(410, message, "Expired")


def forbidden(verb: str, resource: str, namespace: str, name: str, user: str) -> ApiError:
    """What the RBAC authorizer answers (`errors.NewForbidden` with its reason text):
    `pods "x" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in
    the namespace "db"`."""
    plural, _, sub = resource.partition("/")
    group = ""  # the core group: what the platform execs and reads
    what = f'{plural} "{name}"' if name else plural
    where = f' in the namespace "{namespace}"' if namespace else ""
    message = (f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
               f'group "{group}"{where}')
    return ApiError(status(403, message, "Forbidden",
                           _details(name, group, plural, **({"subresource": sub} if sub else {}))))


def generic(code: int, message: str) -> ApiError:
    """What `errors.NewGenericServerResponse` builds (used by injected faults)."""
    causes = [{"reason": "UnexpectedServerResponse", "message": message}]
    texts = {
        409: "the server reported a conflict",
        422: "the server rejected our request due to an error in our request",
        429: "the server has received too many requests and has asked us to try again later",
        500: "an error on the server (\"{m}\") has prevented the request from succeeding",
        503: "the server is currently unable to handle the request",
        504: "the server was unable to return a response in the time allotted, but may still "
        "be processing the request",
    }
    text = texts.get(code, f"the server responded with the status code {code} but did not "
                     "return more information").replace("{m}", message)
    return ApiError(status(code, text, details={"causes": causes}))
