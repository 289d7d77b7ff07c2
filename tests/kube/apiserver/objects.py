"""The core of the store: objects, the resourceVersion counter, the window of recent changes
that watches replay, the write path shared by the API and direct access, the on_change hooks.

Stored objects are never mutated in place (every write stores a new dict), so readers inside
the server may serialize them without copying; everything handed out of the store is a copy.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import errors, selectors
from .resources import NAMESPACE, Registry, Resource

log = logging.getLogger(__name__)

Hook = Callable[[str, dict[str, Any], "dict[str, Any] | None"], None]
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what generateName draws from


@dataclass(frozen=True)
class Change:
    """One committed write, as a watch replays it (object: the state after the write; for
    DELETED the last state, carrying the deletion's resourceVersion)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: Resource
    namespace: str
    name: str
    object: dict[str, Any]
    old: dict[str, Any] | None


class Expired(Exception):
    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_volatile(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """`obj` minus resourceVersion and managedFields timestamps: what a no-op write leaves."""
    if obj is None:
        return None
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta["managedFields"] = [
        {k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []
    ]
    return {**obj, "metadata": meta}


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """What metadata.generation tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class ObjectStore:
    def __init__(
        self,
        registry: Registry | None = None,
        *,
        window: int = 1000,
        strict_namespaces: bool = False,
    ):
        self.registry = registry or Registry()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.window = window
        self.strict_namespaces = strict_namespaces
        self.hooks: list[Hook] = []
        self.hook_errors: list[BaseException] = []
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._objects: dict[Resource, dict[tuple[str, str], dict[str, Any]]] = {
            r: {} for r in self.registry.resources
        }
        self._rv = 0
        self._changes: deque[Change] = deque()
        self.horizon = 0  # changes with rv <= horizon have left the window

    # -- reading ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    @property
    def rv(self) -> int:
        return self._rv

    def now(self) -> str:
        return timestamp(self.clock())

    def resolve(self, resource: str | Resource) -> Resource:
        return self.registry.resolve(resource)

    def raw(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (do not mutate); the server's read path."""
        return self._objects[resource].get((namespace if resource.namespaced else "", name))

    def raw_list(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored objects (do not mutate) in key order, filtered; SelectorError if malformed."""
        labels = selectors.parse_labels(label_selector)
        fields = selectors.parse_fields(field_selector, self.field_labels(resource))
        out = []
        for (ns, _name), obj in sorted(self._objects[resource].items()):
            if namespace and ns != namespace:
                continue
            if labels((obj.get("metadata") or {}).get("labels") or {}) and fields(obj):
                out.append(obj)
        return out

    @staticmethod
    def field_labels(resource: Resource) -> tuple[str, ...]:
        base = ("metadata.name",) + (("metadata.namespace",) if resource.namespaced else ())
        return base + resource.field_labels

    def get(self, resource: str | Resource, namespace: str, name: str) -> dict[str, Any] | None:
        res = self.resolve(resource)
        with self.lock:
            obj = self.raw(res, namespace, name)
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        resource: str | Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = self.resolve(resource)
        with self.lock:
            found = self.raw_list(res, namespace, label_selector, field_selector)
            return copy.deepcopy(found)

    def changes_after(self, rv: int) -> list[Change]:
        """Committed changes with a resourceVersion above `rv`; Expired when some have left
        the window. Call with the lock held."""
        if rv < self.horizon:
            oldest = self._changes[0].rv if self._changes else self._rv + 1
            raise Expired(rv, oldest - 1 if self._changes else self._rv)
        out = []
        for change in reversed(self._changes):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out

    # -- the write path (lock held) -------------------------------------------------------------

    def prepare_create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-assigned metadata for a new object (no resourceVersion yet): name from
        generateName, uid, creationTimestamp, generation. Copies `obj`."""
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(_NAME_CHARS) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        if not resource.namespaced:
            meta.pop("namespace", None)
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        if resource.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        return obj

    def prepare_update(
        self, resource: Resource, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        """Carry over what a client cannot change; bump generation on a spec change."""
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = resource.api_version, resource.kind
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generateName"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        if resource.generation:
            bump = spec_part(new) != spec_part(old)
            meta["generation"] = old_meta.get("generation", 1) + (1 if bump else 0)
        meta.pop("resourceVersion", None)
        return new

    def ensure_namespace(self, resource: Resource, namespace: str, pending: list[Change]):
        if not resource.namespaced:
            return
        if ("", namespace) in self._objects[NAMESPACE]:
            return
        if self.strict_namespaces:
            raise errors.not_found("namespaces", "", namespace)
        ns = self.prepare_create(NAMESPACE, {"metadata": {"name": namespace}})
        self._namespace_defaults(ns)
        pending.append(self.commit(NAMESPACE, "", namespace, ns, None))

    @staticmethod
    def _namespace_defaults(ns: dict[str, Any]) -> None:
        name = ns["metadata"]["name"]
        ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        ns.setdefault("spec", {"finalizers": ["kubernetes"]})
        ns.setdefault("status", {"phase": "Active"})

    def commit(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> Change:
        """Store `new` (None: delete), bump the resourceVersion, record the change."""
        namespace = namespace if resource.namespaced else ""
        self._rv += 1
        if new is None:
            assert old is not None
            shown = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
            del self._objects[resource][(namespace, name)]
            change = Change(self._rv, "DELETED", resource, namespace, name, shown, old)
        else:
            new["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[resource][(namespace, name)] = new
            kind = "ADDED" if old is None else "MODIFIED"
            change = Change(self._rv, kind, resource, namespace, name, new, old)
        self._changes.append(change)
        while len(self._changes) > max(self.window, 1):
            self.horizon = self._changes.popleft().rv
        self.changed.notify_all()
        return change

    def write(
        self, resource: Resource, old: dict[str, Any] | None, new: dict[str, Any]
    ) -> list[Change]:
        """Commit a prepared object: a no-op write commits nothing; an update that drops the
        last finalizer of an object being deleted also deletes it."""
        meta = new["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if old is not None and without_volatile(old) == without_volatile(new):
            return []
        pending: list[Change] = []
        if old is None:
            self.ensure_namespace(resource, ns, pending)
        pending.append(self.commit(resource, ns, name, new, old))
        if old is not None and meta.get("deletionTimestamp") and not meta.get("finalizers"):
            pending += self.remove(resource, new)
        return pending

    def remove(self, resource: Resource, obj: dict[str, Any]) -> list[Change]:
        """Delete now (a namespace takes its objects with it)."""
        meta = obj["metadata"]
        pending = []
        if resource is NAMESPACE:
            for res in self.registry.resources:
                if res.namespaced:
                    for (ns, name), item in sorted(self._objects[res].items()):
                        if ns == meta["name"]:
                            pending.append(self.commit(res, ns, name, None, item))
        pending.append(self.commit(resource, meta.get("namespace", ""), meta["name"], None, obj))
        return pending

    def begin_delete(self, resource: Resource, obj: dict[str, Any]) -> list[Change]:
        """Delete, or with finalizers mark the object as being deleted (deletionTimestamp)."""
        meta = obj["metadata"]
        if not meta.get("finalizers"):
            return self.remove(resource, obj)
        if meta.get("deletionTimestamp"):
            return []
        marked = copy.deepcopy(obj)
        marked["metadata"]["deletionTimestamp"] = self.now()
        marked["metadata"]["deletionGracePeriodSeconds"] = 0
        if resource.generation:
            marked["metadata"]["generation"] = meta.get("generation", 1) + 1
        if resource is NAMESPACE:
            marked.setdefault("status", {})["phase"] = "Terminating"
        return [self.commit(resource, meta.get("namespace", ""), meta["name"], marked, obj)]

    # -- hooks -----------------------------------------------------------------------------------

    def fire(self, changes: list[Change]) -> None:
        """Call the on_change hooks for committed changes (never with the lock held)."""
        for change in changes:
            for hook in list(self.hooks):
                try:
                    hook(change.type, copy.deepcopy(change.object), copy.deepcopy(change.old))
                except Exception as exc:  # a broken hook must not break the API call
                    log.exception("on_change hook %r failed", hook)
                    self.hook_errors.append(exc)

    @contextmanager
    def writing(self) -> Iterator[list[Change]]:
        """Hold the lock for a read-modify-write; hooks fire after it is released."""
        pending: list[Change] = []
        with self.lock:
            yield pending
        self.fire(pending)
