"""Reads: get and list (selectors, pagination with continue tokens)."""

from __future__ import annotations

import base64
import json
from typing import Any

from . import errors
from .calls import Call
from .resources import Resource
from .selectors import SelectorError
from .store import Store


def for_response(resource: Resource, obj: dict[str, Any], *, in_list: bool = False) -> dict:
    """Items of a built-in list carry no kind/apiVersion; everything else does."""
    if in_list and not resource.custom:
        return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return obj


def get(store: Store, call: Call) -> dict[str, Any]:
    res = call.resource
    with store.lock:
        obj = store.raw(res, call.namespace, call.name)
    if obj is None:
        raise errors.not_found(res.plural, res.group, call.name)
    return obj


def _token(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"]).rstrip("\x00")
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(f"continue key is not valid: {token}") from None


def list_(store: Store, call: Call) -> dict[str, Any]:
    res = call.resource
    limit = int(call.q("limit") or 0)
    token = call.q("continue")
    label_sel, field_sel = call.q("labelSelector"), call.q("fieldSelector")
    with store.lock:
        wanted_rv = call.q("resourceVersion")
        if wanted_rv not in (None, "", "0") and int(wanted_rv) > store.rv:
            raise errors.ApiError(errors.status(
                504, f"Too large resource version: {wanted_rv}, current: {store.rv}", "Timeout",
                {"causes": [{"reason": "ResourceVersionTooLarge",
                             "message": "Too large resource version"}],
                 "retryAfterSeconds": 1},
            ))
        try:
            items = store.raw_list(res, call.namespace or None, label_sel, field_sel)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        rv = store.rv
        if token:
            token_rv, start = _untoken(token)
            if token_rv < store.horizon:
                raise errors.ApiError(errors.expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                ))
            rv = token_rv
            items = [o for o in items if _key(o) > start]
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if limit and len(items) > limit:
        rest = len(items) - limit
        items = items[:limit]
        meta["continue"] = _token(rv, _key(items[-1]))
        if not label_sel and not field_sel:
            meta["remainingItemCount"] = rest
    return {
        "apiVersion": res.api_version,
        "kind": f"{res.kind}List",
        "metadata": meta,
        "items": [for_response(res, o, in_list=True) for o in items],
    }


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"
