"""What the server checks before it stores an object.

PostgresCluster: the real CRD through `crd.py` beside this module (prune unknown fields, apply
schema defaults, validate schema + CEL rules); its messages become `details.causes`.
Built-in kinds: metadata.name and a few required fields only (no full schema).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.kube.apiserver import crd

from . import errors
from .resources import Resource

_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_MESSAGE = re.compile(r"(?P<path>[^\s:]+): (?P<text>.*)", re.S)
_REQUIRED = re.compile(r"'(?P<name>[^']+)' is a required property")
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def decode_custom(obj: dict[str, Any], field_validation: str | None) -> tuple[dict, list[str]]:
    """Prune unknown fields and apply defaults, as decoding a custom resource does. Returns
    the object and the warnings to send; `fieldValidation=Strict` refuses unknown fields."""
    unknown = crd.unknown_fields(obj) if hasattr(crd, "unknown_fields") else []
    mode = (field_validation or "Warn").capitalize()
    if mode == "Strict" and unknown:
        raise errors.bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
        )
    warnings = [f'unknown field "{p}"' for p in unknown] if mode == "Warn" else []
    decoded = crd.prune_unknown(obj)
    if hasattr(crd, "apply_defaults"):
        decoded = crd.apply_defaults(decoded)
    return decoded, warnings


def value_at(obj: Any, path: str) -> Any:
    node = obj
    for name, index in _TOKEN.findall(path):
        if name and isinstance(node, dict):
            node = node.get(name)
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node


def cause(message: str, obj: Any) -> dict[str, str]:
    """A `StatusCause` from one of crd.validate's "path: message" strings."""
    m = _MESSAGE.fullmatch(message)
    if not m:
        return {"reason": "FieldValueInvalid", "message": message, "field": ""}
    path, text = m.group("path"), m.group("text")
    path = "" if path == "(root)" else path
    if req := _REQUIRED.fullmatch(text):
        field = f"{path}.{req.group('name')}" if path else req.group("name")
        return {"reason": "FieldValueRequired", "message": "Required value", "field": field}
    value = json.dumps(value_at(obj, path) if path else None)
    if "is not of type" in text:
        reason = "FieldValueTypeInvalid"
    elif "is not one of" in text:
        return {"reason": "FieldValueNotSupported",
                "message": f"Unsupported value: {value}: {text}", "field": path}
    elif text.startswith("Duplicate value"):
        return {"reason": "FieldValueDuplicate", "message": text, "field": path}
    else:
        reason = "FieldValueInvalid"
    return {"reason": reason, "message": f"Invalid value: {value}: {text}", "field": path}


def validate_custom(resource: Resource, obj: dict[str, Any]) -> None:
    problems = crd.validate(obj)
    if problems:
        name = (obj.get("metadata") or {}).get("name") or ""
        causes = [cause(p, obj) for p in problems]
        raise errors.invalid(resource.kind, resource.group, name, causes)


def validate_builtin(resource: Resource, obj: dict[str, Any]) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = []
    pattern, limit = (
        (_DNS1123_LABEL, 63) if resource.plural == "namespaces" else (_DNS1123_SUBDOMAIN, 253)
    )
    if not (len(name) <= limit and pattern.fullmatch(name)):
        causes.append({
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 "
            f"{'label' if limit == 63 else 'subdomain'} must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character",
            "field": "metadata.name",
        })
    for path in resource.required:
        if value_at(obj, path) in (None, [], {}, ""):
            causes.append({"reason": "FieldValueRequired", "message": "Required value",
                           "field": path})
    if causes:
        raise errors.invalid(resource.kind, resource.group, name, causes)


def validate(resource: Resource, obj: dict[str, Any]) -> None:
    if resource.custom:
        validate_custom(resource, obj)
    else:
        validate_builtin(resource, obj)
