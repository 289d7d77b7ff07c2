"""metadata.managedFields, simplified: field sets are the leaf paths of an object with every
list atomic (the real server tracks list items by key), one entry per (manager, operation,
subresource). Good enough for "who owns spec.shutdown" and for server-side apply conflicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .patches import apply_merge

Path = tuple[str, ...]
MISSING = object()
# ObjectMeta fields the server owns; never part of a field set.
SERVER_META = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
    "generateName",
}


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]], api_version: str):
        self.conflicts = conflicts
        self.api_version = api_version
        super().__init__(self.message())

    def message(self) -> str:
        n = len(self.conflicts)
        if n == 1:
            manager, path = self.conflicts[0]
            return (f'Apply failed with 1 conflict: conflict with "{manager}" using '
                    f"{self.api_version}: {dotted(path)}")
        lines = [f"Apply failed with {n} conflicts:"]
        lines += [f'conflict with "{m}" using {self.api_version}: {dotted(p)}'
                  for m, p in self.conflicts]
        return "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [
            {"reason": "FieldManagerConflict",
             "message": f'conflict with "{m}" using {self.api_version}', "field": dotted(p)}
            for m, p in self.conflicts
        ]


def dotted(path: Path) -> str:
    return "." + ".".join(path)


def scoped(obj: dict[str, Any] | None, subresource: str) -> dict[str, Any]:
    """The part of `obj` a write through `subresource` ("" or "status") may touch."""
    if not obj:
        return {}
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_META}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def leaves(node: Any, prefix: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    if isinstance(node, dict) and node:
        for key, value in node.items():
            out.update(leaves(value, (*prefix, key)))
    elif prefix:
        out[prefix] = node
    return out


def get_path(obj: Any, path: Path) -> Any:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _delete_path(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    parents = []
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, part in reversed(parents):  # drop maps the removal left empty
        if parent[part] == {}:
            del parent[part]


def _overlaps(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    _mark_owned_maps(root, set(paths), ())
    return root


def _mark_owned_maps(node: dict[str, Any], paths: set[Path], prefix: Path) -> None:
    for key, child in node.items():
        if key == ".":
            continue
        path = (*prefix, key[2:])
        if child and path in paths:
            child["."] = {}
        _mark_owned_maps(child, paths, path)


def from_fields_v1(node: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in node.items():
        if key == ".":
            out.add(prefix)
        elif key.startswith("f:"):
            path = (*prefix, key[2:])
            out |= from_fields_v1(child, path) if child else {path}
    return out


def _entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    entries = []
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        entries.append({**entry, "_paths": from_fields_v1(entry.get("fieldsV1") or {})})
    return entries


def _finish(entries: list[dict[str, Any]], obj: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in entries:
        paths = {p for p in entry.pop("_paths") if get_path(obj, p) is not MISSING}
        if paths:
            out.append({**entry, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)})
    return out


def _own_entry(entries, manager, operation, subresource, api_version, now):
    for entry in entries:
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
            manager, operation, subresource
        ):
            entry.update(apiVersion=api_version, time=now)
            return entry
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
             "_paths": set()}
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)
    return entry


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                  subresource: str, api_version: str, now: str) -> list[dict[str, Any]]:
    """managedFields after a create, update or (non-apply) patch by `manager`."""
    before, after = leaves(scoped(old, subresource)), leaves(scoped(new, subresource))
    changed = {p for p, v in after.items() if before.get(p, MISSING) != v}
    entries = _entries(old)
    if changed:
        for entry in entries:
            entry["_paths"] -= changed
        own = _own_entry(entries, manager, "Update", subresource, api_version, now)
        own["_paths"] |= changed
    return _finish(entries, new)


def apply(current: dict[str, Any], config: dict[str, Any], manager: str, subresource: str,
          api_version: str, now: str, force: bool) -> dict[str, Any]:
    """Server-side apply of `config` onto `current`: conflicts with other managers (unless
    forced), removal of fields this manager applied before and no longer applies (unless
    someone else owns them), then the merge. Returns the new object with managedFields."""
    wanted = leaves(scoped(config, subresource))
    entries = _entries(current)
    own = _own_entry(entries, manager, "Apply", subresource, api_version, now)
    others = [e for e in entries if e is not own]
    conflicts: list[tuple[str, Path]] = []
    taken: set[Path] = set()
    for path, value in wanted.items():
        actual = get_path(current, path)
        if actual is MISSING or actual == value:
            continue
        for entry in others:
            if any(_overlaps(path, q) for q in entry["_paths"]):
                conflicts.append((entry["manager"], path))
                taken.add(path)
    if conflicts and not force:
        raise ApplyConflict(conflicts, api_version)
    result = {k: v for k, v in current.items()}
    result = apply_merge({}, result)  # a deep copy
    for path in own["_paths"] - set(wanted):
        if not any(_overlaps(path, q) for e in others for q in e["_paths"]):
            _delete_path(result, path)
    result = apply_merge(result, scoped(config, subresource))
    for entry in others:
        entry["_paths"] = {q for q in entry["_paths"] if not any(_overlaps(q, p) for p in taken)}
    own["_paths"] = set(wanted)
    result.setdefault("metadata", {})["managedFields"] = _finish(entries, result)
    return result
