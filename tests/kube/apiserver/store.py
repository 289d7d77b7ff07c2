"""The object store behind the test API server (see objects.ObjectStore for the core).

Direct access (`get`, `list`, `create`, `update`, `put`, `patch`, `delete`, `record_event`)
bypasses HTTP, admission and validation but still assigns metadata, bumps the
resourceVersion, emits watch events and calls the hooks: it is what a controller (the PGO
emulator) or a test uses to seed and change the world.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from . import errors
from .objects import Change, Expired, Hook, ObjectStore
from .patches import merge_patch
from .resources import NAMESPACE, Registry, Resource

__all__ = ["DEFAULT_NAMESPACES", "Change", "Expired", "Hook", "Store"]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Store(ObjectStore):
    def __init__(
        self,
        registry: Registry | None = None,
        *,
        window: int = 1000,
        strict_namespaces: bool = False,
        namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
    ):
        super().__init__(registry, window=window, strict_namespaces=strict_namespaces)
        for name in namespaces:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # -- direct access for tests and controllers ---------------------------------------------

    def _key(self, obj: dict[str, Any]) -> tuple[Resource, str, str]:
        resource = self.registry.for_object(obj)
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace", "default") if resource.namespaced else ""
        return resource, namespace, meta.get("name", "")

    def _validated(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        from . import validation  # the CRD loads lazily, only when asked for

        if resource.custom:
            obj, _ = validation.decode_custom(obj, "Ignore")
        validation.validate(resource, obj)
        return obj

    def create(self, obj: dict[str, Any], *, validate: bool = False) -> dict[str, Any]:
        """Create `obj` (namespace "default" if none); ApiError 409 if it exists."""
        resource, namespace, name = self._key(obj)
        with self.writing() as pending:
            new = self.prepare_create(resource, obj)
            if resource.namespaced:
                new["metadata"]["namespace"] = namespace
            name = new["metadata"]["name"]
            if self.raw(resource, namespace, name) is not None:
                raise errors.already_exists(resource.plural, resource.group, name)
            if resource is NAMESPACE:
                self._namespace_defaults(new)
            if validate:
                new = self._validated(resource, new)
            pending += self.write(resource, None, new)
            return copy.deepcopy(new)

    def update(self, obj: dict[str, Any], *, validate: bool = False) -> dict[str, Any]:
        """Replace the whole object, status included; ApiError 409 when obj carries a stale
        metadata.resourceVersion, 404 when it does not exist."""
        resource, namespace, name = self._key(obj)
        with self.writing() as pending:
            old = self.raw(resource, namespace, name)
            if old is None:
                raise errors.not_found(resource.plural, resource.group, name)
            wanted = (obj.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource.plural, resource.group, name)
            new = self.prepare_update(resource, old, obj)
            if validate:
                new = self._validated(resource, new)
            pending += self.write(resource, old, new)
            return copy.deepcopy(self.raw(resource, namespace, name) or new)

    def put(self, obj: dict[str, Any], *, validate: bool = False) -> dict[str, Any]:
        """Create or replace, whatever the resourceVersion."""
        resource, namespace, name = self._key(obj)
        with self.lock:
            exists = self.raw(resource, namespace, name) is not None
        if not exists:
            return self.create(obj, validate=validate)
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {}).pop("resourceVersion", None)
        return self.update(obj, validate=validate)

    def patch(
        self, resource: str | Resource, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """An RFC 7386 merge patch of the whole object (status included); retried on a
        concurrent write, as a server-side patch is."""
        res = self.resolve(resource)
        for _attempt in range(10):
            with self.lock:
                old = self.raw(res, namespace, name)
                if old is None:
                    raise errors.not_found(res.plural, res.group, name)
                new = merge_patch(old, patch)
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            try:
                return self.update(new)
            except errors.ApiError as exc:
                if exc.code != 409:
                    raise
        raise errors.conflict(res.plural, res.group, name)

    def delete(
        self, resource: str | Resource, namespace: str, name: str, *, force: bool = False
    ) -> dict[str, Any] | None:
        """Delete (honouring finalizers unless force); returns the last state, None if absent."""
        res = self.resolve(resource)
        with self.writing() as pending:
            old = self.raw(res, namespace, name)
            if old is None:
                return None
            pending += self.remove(res, old) if force else self.begin_delete(res, old)
            return copy.deepcopy(pending[-1].object) if pending else copy.deepcopy(old)

    def record_event(
        self,
        involved: dict[str, Any],
        reason: str,
        message: str,
        *,
        type: str = "Normal",
        component: str = "postgrescluster-controller",
    ) -> dict[str, Any]:
        """A core v1 Event about `involved`, shaped as client-go's event recorder writes it."""
        meta = involved["metadata"]
        now = self.now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta.get("namespace", "default"),
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        return self.create(event)
