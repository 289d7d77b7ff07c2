"""The REST semantics of one resource request: create, get, list, replace, patch, delete.

Each write runs under the store lock from read to commit (so it is atomic, as etcd's
compare-and-swap makes it), and the on_change hooks fire after the lock is released and
before the response is sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from . import errors, fields, validation
from .calls import Call
from .patches import PatchError, PatchFormatError, json_patch, merge_patch
from .reads import for_response
from .resources import NAMESPACE, POD
from .selectors import SelectorError
from .store import Store

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CUSTOM_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
BUILTIN_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
RV_REQUIRED = "Invalid value: 0x0: must be specified for an update"


def _decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise errors.bad_request(f"error decoding request body: {exc}") from None


def _decode_body(raw: bytes, content_type: str) -> Any:
    """A create or update body: JSON or YAML (the real server also takes protobuf and CBOR,
    which the Python client never sends)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("", "application/json"):
        return _decode_json(raw)
    if kind == "application/yaml":
        try:
            return yaml.safe_load(raw or b"")
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
    raise errors.unsupported_media(["application/json", "application/yaml",
                                    "application/vnd.kubernetes.protobuf"])


def _check_type(call: Call, body: Any) -> dict[str, Any]:
    res = call.resource
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    if res.custom and not body.get("kind"):
        raise errors.bad_request(f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
    if body.get("apiVersion", res.api_version) != res.api_version:
        raise errors.bad_request(
            f"the API version in the data ({body['apiVersion']}) does not match the expected "
            f"API version ({res.api_version})"
        )
    if body.get("kind", res.kind) != res.kind:
        raise errors.bad_request(
            f"the kind in the data ({body['kind']}) does not match the expected kind ({res.kind})"
        )
    meta = body.get("metadata") or {}
    if res.namespaced and meta.get("namespace") not in (None, "", call.namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the "
            "request"
        )
    return body


def _admit(store: Store, call: Call, obj: dict[str, Any]) -> dict[str, Any]:
    """Decode (prune, default) and validate a would-be stored object."""
    if call.resource.custom:
        obj, warnings = validation.decode_custom(obj, call.q("fieldValidation"))
        call.warnings += warnings
    validation.validate(call.resource, obj)
    return obj


def _with_status(obj: dict[str, Any], status: Any) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "status"}
    if status is not None:
        out["status"] = copy.deepcopy(status)
    return out


def _isolate(call: Call, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A write to the main resource keeps the old status; one to /status changes only it."""
    if not call.resource.has_status:
        return new
    if call.subresource == "status":
        meta = {**old["metadata"]}
        if "resourceVersion" in (new.get("metadata") or {}):
            meta["resourceVersion"] = new["metadata"]["resourceVersion"]
        return _with_status({**old, "metadata": meta}, new.get("status"))
    return _with_status(new, old.get("status"))


def _preconditions(call: Call, old: dict[str, Any], new: dict[str, Any], *, put: bool) -> None:
    res, meta, old_meta = call.resource, new.get("metadata") or {}, old["metadata"]
    rv = meta.get("resourceVersion")
    if rv and rv != old_meta["resourceVersion"]:
        raise errors.conflict(res.plural, res.group, call.name)
    if put and not rv and not res.unconditional_update:
        raise errors.invalid(res.kind, res.group, call.name, [{
            "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
            "message": RV_REQUIRED,
        }])
    if meta.get("uid") and meta["uid"] != old_meta["uid"]:
        raise errors.conflict(
            res.plural, res.group, call.name,
            f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
            f"{old_meta['uid']}",
        )
    if meta.get("name") and meta["name"] != call.name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({call.name})"
        )


# -- writes -----------------------------------------------------------------------------------


def _prepare_new(store: Store, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    res = call.resource
    obj = store.prepare_create(res, body)
    meta = obj["metadata"]
    if res.namespaced:
        meta["namespace"] = call.namespace
    if not meta.get("name"):
        raise errors.invalid(res.kind, res.group, "", [{
            "reason": "FieldValueRequired", "field": "metadata.name",
            "message": "Required value: name or generateName is required",
        }])
    if res.has_status:
        obj.pop("status", None)
    if res is POD:
        obj["status"] = {"phase": "Pending"}
    if res is NAMESPACE:
        store._namespace_defaults(obj)
    return obj


def create(store: Store, call: Call, raw: bytes, content_type: str = "application/json",
           ) -> tuple[int, dict[str, Any]]:
    body = _check_type(call, _decode_body(raw, content_type))
    res, dry_run = call.resource, call.dry_run
    with store.writing() as pending:
        obj = _prepare_new(store, call, body)
        call.name = obj["metadata"]["name"]
        obj = _admit(store, call, obj)
        obj["metadata"]["managedFields"] = fields.record_update(
            None, obj, call.manager, "", res.api_version, store.now()
        )
        if store.raw(res, call.namespace, call.name) is not None:
            raise errors.already_exists(res.plural, res.group, call.name)
        if res.namespaced and store.strict_namespaces and store.raw(
            NAMESPACE, "", call.namespace
        ) is None:
            raise errors.not_found("namespaces", "", call.namespace)
        if dry_run:
            return 201, obj
        pending += store.write(res, None, obj)
        return 201, obj


def _update(store: Store, call: Call, old: dict[str, Any], new: dict[str, Any],
            pending: list, managed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Status isolation, admission, server metadata, managedFields, commit."""
    res = call.resource
    new = _isolate(call, old, new)
    new = _admit(store, call, new)
    new = store.prepare_update(res, old, new)
    if managed is None:
        managed = fields.record_update(
            old, new, call.manager, call.subresource, res.api_version, store.now()
        )
    new["metadata"]["managedFields"] = managed
    if call.dry_run:
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return new
    done = store.write(res, old, new)
    pending += done
    if not done:
        return old
    return done[0].object if done[0].type != "DELETED" else done[-1].object


def replace(store: Store, call: Call, raw: bytes, content_type: str = "application/json",
            ) -> tuple[int, dict[str, Any]]:
    body = _check_type(call, _decode_body(raw, content_type))
    res = call.resource
    call.dry_run  # noqa: B018 (validates the parameter before anything else)
    with store.writing() as pending:
        old = store.raw(res, call.namespace, call.name)
        if old is None:
            raise errors.not_found(res.plural, res.group, call.name)
        _preconditions(call, old, body, put=True)
        return 200, _update(store, call, old, body, pending)


def _patch_type(call: Call, content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    allowed = CUSTOM_PATCH_TYPES if call.resource.custom else BUILTIN_PATCH_TYPES
    if kind not in allowed:
        raise errors.unsupported_media(allowed)
    if kind == APPLY_PATCH and not call.q("fieldManager"):
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [{
            "reason": "FieldValueRequired", "field": "fieldManager",
            "message": "Required value: is required for apply patch",
        }])
    if kind != APPLY_PATCH and call.q("force") is not None:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [{
            "reason": "FieldValueForbidden", "field": "force",
            "message": "Forbidden: may not be specified for non-apply patch",
        }])
    return kind


def patch(store: Store, call: Call, content_type: str, raw: bytes) -> tuple[int, dict]:
    kind = _patch_type(call, content_type)
    res = call.resource
    call.dry_run  # noqa: B018
    if kind == APPLY_PATCH:
        try:
            body = yaml.safe_load(raw or b"")
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        body = _check_type(call, body)
    else:
        body = _decode_json(raw)
    with store.writing() as pending:
        old = store.raw(res, call.namespace, call.name)
        if old is None:
            if kind == APPLY_PATCH and not call.subresource:
                return _apply_create(store, call, body, pending)
            raise errors.not_found(res.plural, res.group, call.name)
        if kind == APPLY_PATCH:
            _preconditions(call, old, body, put=False)
            try:
                applied = fields.apply(
                    old, body, call.manager, call.subresource, res.api_version, store.now(),
                    call.flag("force"),
                )
            except fields.ApplyConflict as exc:
                raise errors.ApiError(errors.status(
                    409, exc.message(), "Conflict", {"causes": exc.causes()}
                )) from None
            managed = applied["metadata"]["managedFields"]
            return 200, _update(store, call, old, applied, pending, managed)
        try:
            if kind == JSON_PATCH:
                new = json_patch(old, body)
            elif isinstance(body, dict):
                new = merge_patch(old, body)
            else:
                raise errors.bad_request("the body of a merge patch must be a JSON object")
        except PatchFormatError as exc:
            raise errors.bad_request(str(exc)) from None
        except PatchError as exc:
            raise errors.generic(422, str(exc)) from None
        if not isinstance(new, dict):
            raise errors.bad_request("the patch replaced the whole object")
        _preconditions(call, old, new, put=False)
        return 200, _update(store, call, old, new, pending)


def _apply_create(store: Store, call: Call, body: dict, pending: list) -> tuple[int, dict]:
    res = call.resource
    if (body.get("metadata") or {}).get("name") not in (None, call.name):
        raise errors.bad_request("the name of the object does not match the name on the URL")
    seed = {"apiVersion": res.api_version, "kind": res.kind, "metadata": {"name": call.name}}
    obj = fields.apply(seed, body, call.manager, "", res.api_version, store.now(), False)
    managed = obj["metadata"]["managedFields"]
    obj = _prepare_new(store, call, obj)
    obj = _admit(store, call, obj)
    obj["metadata"]["managedFields"] = managed
    if res.namespaced and store.strict_namespaces and store.raw(
        NAMESPACE, "", call.namespace
    ) is None:
        raise errors.not_found("namespaces", "", call.namespace)
    if not call.dry_run:
        pending += store.write(res, None, obj)
    return 201, obj


def _delete_options(raw: bytes) -> dict[str, Any]:
    body = _decode_json(raw) if raw and raw.strip() else {}
    return body if isinstance(body, dict) else {}


def delete(store: Store, call: Call, raw: bytes) -> dict[str, Any]:
    res = call.resource
    options = _delete_options(raw)
    dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
    pre = options.get("preconditions") or {}
    with store.writing() as pending:
        old = store.raw(res, call.namespace, call.name)
        if old is None:
            raise errors.not_found(res.plural, res.group, call.name)
        meta = old["metadata"]
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(key) and pre[key] != meta[key]:
                raise errors.conflict(
                    res.plural, res.group, call.name,
                    f"Precondition failed: {label} in precondition: {pre[key]}, {label} in "
                    f"object meta: {meta[key]}",
                )
        result = old
        if not dry_run:
            done = store.begin_delete(res, old)
            pending += done
            if done and done[-1].type == "MODIFIED":
                result = done[-1].object
    if res.delete_returns_object:
        return result
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": call.name, "group": res.group, "kind": res.plural,
                    "uid": meta["uid"]},
    }


def delete_collection(store: Store, call: Call, raw: bytes) -> dict[str, Any]:
    res = call.resource
    dry_run = call.dry_run
    with store.writing() as pending:
        try:
            items = store.raw_list(
                res, call.namespace or None, call.q("labelSelector"), call.q("fieldSelector")
            )
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        if not dry_run:
            for obj in items:
                pending += store.begin_delete(res, obj)
        rv = store.rv
    return {"apiVersion": res.api_version, "kind": f"{res.kind}List",
            "metadata": {"resourceVersion": str(rv)},
            "items": [for_response(res, o, in_list=True) for o in items]}
