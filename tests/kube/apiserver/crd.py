"""The PostgresCluster CRD as an API server applies it: load, prune, default, validate.

Pure apart from reading the CRD file once (cached). The file is PGO's own CRD, by default
`shared/pgo/postgresclusters.crd.yaml` beside the checkout, or the path in $DR_PGO_CRD.

What `validate` covers, in the order a kube-apiserver applies it to a create:
- top level: apiVersion, kind, metadata.name (a DNS-1035 label: PGO names Services after
  the cluster), metadata.namespace, label and annotation keys and values;
- unknown fields: the server prunes them silently; `validate(strict=True)` (the default)
  reports them instead, like `kubectl --validate=strict`, so a typo in a builder cannot vanish;
- schema defaults, then the OpenAPI v3 schema with jsonschema (Draft 7 after converting
  `nullable`, `x-kubernetes-int-or-string` and boolean `exclusiveMinimum/Maximum`): types,
  required, enums, patterns, bounds, lengths;
- `x-kubernetes-list-type` map/set uniqueness (e.g. two unnamed instance sets collide);
- the CEL `x-kubernetes-validations` rules, as Python predicates (`_rule`): all 51 rules of
  the v1beta1 schema except the four that compare `duration(...)` values under
  spec.instrumentation (PGO's own duration syntax, not DR); `unevaluated_rules()` lists them.
Not covered: `format` (int32/int64 ranges, date-time), ObjectMeta rules beyond the above,
admission webhooks, and anything that depends on other objects (that a namespace exists).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, ValidationError, validators

from restores.platforms.manifests.specs import (
    API_VERSION,
    DNS1035_LABEL_RE,
    DNS1123_LABEL_RE,
    DNS1123_SUBDOMAIN_RE,
    KIND,
    VERSION,
)

CRD_ENV = "DR_PGO_CRD"
DEFAULT_CRD_PATH = (
    Path(__file__).resolve().parents[4] / "shared" / "pgo" / "postgresclusters.crd.yaml"
)

_QUALIFIED_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", re.ASCII)
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
MAX_ANNOTATIONS_BYTES = 256 * 1024

CRD_MISSING = "The PostgresCluster CRD was not found at {path} (set ${env} to its path)."
CRD_NO_VERSION = "The CRD at {path} has no {version} schema."
NOT_AN_OBJECT = "(root): the manifest must be an object"
BAD_API_VERSION = f"apiVersion: must be {API_VERSION}"
BAD_KIND = f"kind: must be {KIND}"
NO_METADATA = "metadata: is required and must be an object"
BAD_NAME = (
    "metadata.name: {name!r} must be a DNS-1035 label: at most 63 lower-case letters, "
    "digits and '-', starting with a letter and ending with a letter or digit"
)
BAD_NAMESPACE = "metadata.namespace: {name!r} must be a DNS-1123 label (at most 63 characters)"
BAD_META_MAP = "metadata.{field}: must map strings to strings"
BAD_META_KEY = "metadata.{field}: {key!r} is not a valid key (optional DNS prefix, '/', name)"
BAD_LABEL_VALUE = "metadata.labels: the value of {key!r} is not a valid label value"
ANNOTATIONS_TOO_BIG = "metadata.annotations: more than 256 KiB in total"
UNKNOWN_FIELD = "{path}: unknown field (the API server would drop it)"
DUPLICATE_VALUE = "Duplicate value: {value}"


# -- loading ---------------------------------------------------------------------------------


def crd_path() -> Path:
    return Path(os.environ.get(CRD_ENV) or DEFAULT_CRD_PATH)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    """The converted v1beta1 openAPIV3Schema of the CRD file at `path`."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            crd = yaml.load(handle, Loader=loader)  # noqa: S506 (a safe loader)
    except FileNotFoundError as exc:
        raise FileNotFoundError(CRD_MISSING.format(path=path, env=CRD_ENV)) from exc
    for version in crd.get("spec", {}).get("versions", ()):
        if version.get("name") == VERSION:
            return openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
    raise LookupError(CRD_NO_VERSION.format(path=path, version=VERSION))


def schema() -> dict[str, Any]:
    """The PostgresCluster v1beta1 schema (converted for jsonschema), loaded once per path."""
    return _load(str(crd_path()))


_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf")


def openapi_to_jsonschema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as a Draft 7 JSON schema (descriptions dropped)."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = openapi_to_jsonschema(value)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [openapi_to_jsonschema(sub) for sub in value]
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            flag = out.pop(bound)
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


# -- CEL rules -------------------------------------------------------------------------------


_NOT_HAS_RE = re.compile(r"!has\(self\.(\w+)\)")
_LDAP = ("ldapprefix", "ldapsuffix")
_LDAP_SEARCH = ("ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute")
_HBA_OTHER = ("connection", "databases", "method", "options", "users")


def _prefixed(s: Mapping[str, Any], prefix: str, *allowed: str) -> bool:
    return any(k.startswith(prefix) and k not in allowed for k in s)


# The CRD's rules as Python predicates over `self`, keyed by rule text; rules that only
# say `!has(self.a) && !has(self.b) ...` are read by `_rule`. A missing key raises KeyError,
# which fails the rule as CEL's "no such key" error does.
# fmt: off
_CEL: dict[str, Callable[[Any], bool]] = {
    "0 < size(self.accessModes)": lambda s: len(s["accessModes"]) > 0,
    "has(self.resources.requests.storage)": lambda s: "storage" in s["resources"]["requests"],
    "!has(self.repo.volume)": lambda s: "volume" not in s["repo"],
    '!has(self.ssl) && !self.exists(k, k.startsWith("ssl_") && '
    "!(k == 'ssl_groups' || k == 'ssl_ecdh_curve'))":
        lambda s: "ssl" not in s and not _prefixed(s, "ssl_", "ssl_groups", "ssl_ecdh_curve"),
    '!self.exists(k, k.startsWith("unix_socket_"))': lambda s: not _prefixed(s, "unix_socket_"),
    '!has(self.wal_level) || self.wal_level in ["logical"]':
        lambda s: s.get("wal_level", "logical") == "logical",
    '!has(self.recovery_target) && !self.exists(k, k.startsWith("recovery_target_"))':
        lambda s: "recovery_target" not in s and not _prefixed(s, "recovery_target_"),
    "!has(self.config) || !has(self.config.parameters) || "
    "!has(self.config.parameters.ssl_groups) || self.postgresVersion > 17":
        lambda s: "ssl_groups" not in s.get("config", {}).get("parameters", {})
        or s["postgresVersion"] > 17,
    '!self.trim().startsWith("include")': lambda s: not s.strip().startswith("include"),
    'self != "trust"': lambda s: s != "trust",
    "[has(self.hba), has(self.connection) || has(self.databases) || has(self.method) || "
    "has(self.options) || has(self.users)].exists_one(b,b)":
        lambda s: ("hba" in s) != any(k in s for k in _HBA_OTHER),
    "has(self.hba) || (has(self.connection) && has(self.method))":
        lambda s: "hba" in s or ("connection" in s and "method" in s),
    'has(self.hba) || self.method != "ldap" || (has(self.options) && '
    '["ldapbasedn","ldapprefix","ldapsuffix"].exists(k, k in self.options))':
        lambda s: "hba" in s or s["method"] != "ldap"
        or any(k in s.get("options", {}) for k in ("ldapbasedn", *_LDAP)),
    'has(self.hba) || self.method != "ldap" || !has(self.options) || '
    '[["ldapprefix","ldapsuffix"], ["ldapbasedn","ldapbinddn","ldapbindpasswd",'
    '"ldapsearchattribute","ldapsearchfilter"]].exists_one(a, a.exists(k, k in self.options))':
        lambda s: "hba" in s or s["method"] != "ldap" or "options" not in s
        or any(k in s["options"] for k in _LDAP)
        != any(k in s["options"] for k in (*_LDAP_SEARCH, "ldapsearchfilter")),
    'has(self.hba) || self.method != "radius" || (has(self.options) && '
    '["radiusservers","radiussecrets"].all(k, k in self.options))':
        lambda s: "hba" in s or s["method"] != "radius"
        or all(k in s.get("options", {}) for k in ("radiusservers", "radiussecrets")),
    "self.name != 'K8S_POD_NAMESPACE' && self.name != 'K8S_POD_NAME' && "
    "self.name != 'PGPASSWORD'":
        lambda s: s["name"] not in ("K8S_POD_NAMESPACE", "K8S_POD_NAME", "PGPASSWORD"),
    "!has(self.maxRecords) || self.minRecords <= self.maxRecords":
        lambda s: "maxRecords" not in s or s["minRecords"] <= s["maxRecords"],
    'self != "." && !self.startsWith("..")': lambda s: s != "." and not s.startswith(".."),
    '!self.matches("(?i:PASSWORD)")': lambda s: not re.search("(?i:PASSWORD)", s),
    '!self.matches("(?:--|/[*]|[*]/)")': lambda s: not re.search(r"(?:--|/[*]|[*]/)", s),
}
# fmt: on


def _rule(text: str) -> Callable[[Any], bool] | None:
    """The predicate for a CEL rule, or None when `validate` does not evaluate it."""
    if text in _CEL:
        return _CEL[text]
    parts = text.split(" && ")
    keys = [m.group(1) for p in parts if (m := _NOT_HAS_RE.fullmatch(p))]
    return (lambda s: not any(k in s for k in keys)) if len(keys) == len(parts) else None


def _walk_rules(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if not isinstance(node, Mapping):
        return
    for rule in node.get("x-kubernetes-validations", ()):
        yield path or "(root)", rule["rule"]
    for name, sub in node.get("properties", {}).items():
        yield from _walk_rules(sub, f"{path}.{name}" if path else name)
    yield from _walk_rules(node.get("items"), f"{path}[]")
    yield from _walk_rules(node.get("additionalProperties"), f"{path}{{}}")


def cel_rules() -> list[tuple[str, str]]:
    """Every (schema path, CEL rule) in the schema."""
    return list(_walk_rules(schema(), ""))


def unevaluated_rules() -> list[tuple[str, str]]:
    """The CEL rules `validate` does not evaluate."""
    return [(path, rule) for path, rule in cel_rules() if _rule(rule) is None]


# -- validation ------------------------------------------------------------------------------


def _cel_keyword(validator: Any, rules: Any, instance: Any, schema: Mapping[str, Any]):
    if "type" in schema and not validator.is_type(instance, schema["type"]):
        return
    for rule in rules:
        check = _rule(rule["rule"])
        if check is None:
            continue
        try:
            ok = bool(check(instance))
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            yield ValidationError(rule.get("message") or f"failed rule: {rule['rule']}")


def _list_type_keyword(validator: Any, list_type: Any, instance: Any, schema: Mapping[str, Any]):
    if not validator.is_type(instance, "array") or list_type not in ("map", "set"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", ())
    seen: set[str] = set()
    for index, item in enumerate(instance):
        if list_type == "map" and isinstance(item, Mapping):
            value = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
        else:
            value = json.dumps(item, sort_keys=True)
        if value in seen:
            yield ValidationError(DUPLICATE_VALUE.format(value=value), path=[index])
        seen.add(value)


_POSIX_CLASSES = {  # RE2's ASCII-only POSIX classes
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": r"\x00-\x7f", "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": r"!-/:-@\[-`{-~", "space": r"\t\n\v\f\r ", "upper": "A-Z", "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}  # fmt: skip


@functools.lru_cache(maxsize=256)
def go_regex(pattern: str) -> re.Pattern[str] | None:
    """A schema `pattern` (Go RE2) as a Python regex: POSIX classes spelled out, and `$` as
    the end of the text (RE2's never matches before a final newline, Python's does). None
    for Unicode classes (`\\pZ`), which Python's `re` lacks: such patterns are not checked."""
    if re.search(r"\\[pP]", pattern):
        return None
    out, i, in_class = [], 0, False
    while i < len(pattern):
        posix = re.match(r"\[:(\w+):\]", pattern[i:]) if in_class else None
        if pattern[i] == "\\":
            piece, step = pattern[i : i + 2], 2
        elif posix:
            piece, step = _POSIX_CLASSES[posix.group(1)], len(posix.group(0))
        else:
            piece, step = pattern[i], 1
            if piece in "[]":
                in_class = piece == "["
            elif piece == "$" and not in_class:
                piece = r"\Z"
        out.append(piece)
        i += step
    return re.compile("".join(out))


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]):
    regex = go_regex(pattern)
    if regex is not None and validator.is_type(instance, "string") and not regex.search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(
    Draft7Validator,
    {
        "pattern": _pattern_keyword,
        "x-kubernetes-validations": _cel_keyword,
        "x-kubernetes-list-type": _list_type_keyword,
    },
)


def _format_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _check_meta_map(meta: Mapping[str, Any], field: str) -> list[str]:
    values = meta.get(field)
    if values is None:
        return []
    if not isinstance(values, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        return [BAD_META_MAP.format(field=field)]
    errors = []
    for key, value in values.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and not _valid(DNS1123_SUBDOMAIN_RE, prefix, 253)) or not _valid(
            _QUALIFIED_NAME_RE, name, 63
        ):
            errors.append(BAD_META_KEY.format(field=field, key=key))
        if field == "labels" and not _valid(_LABEL_VALUE_RE, value, 63):
            errors.append(BAD_LABEL_VALUE.format(key=key))
    if field == "annotations" and sum(len(k) + len(v) for k, v in values.items()) > (
        MAX_ANNOTATIONS_BYTES
    ):
        errors.append(ANNOTATIONS_TOO_BIG)
    return errors


def _valid(pattern: re.Pattern[str], text: Any, limit: int) -> bool:
    return isinstance(text, str) and len(text) <= limit and bool(pattern.fullmatch(text))


def check_top_level(manifest: Any) -> list[str]:
    """apiVersion, kind and the metadata the API server checks itself."""
    if not isinstance(manifest, Mapping):
        return [NOT_AN_OBJECT]
    errors = []
    if manifest.get("apiVersion") != API_VERSION:
        errors.append(BAD_API_VERSION)
    if manifest.get("kind") != KIND:
        errors.append(BAD_KIND)
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping):
        return [*errors, NO_METADATA]
    if not _valid(DNS1035_LABEL_RE, meta.get("name"), 63):
        errors.append(BAD_NAME.format(name=meta.get("name")))
    if "namespace" in meta and not _valid(DNS1123_LABEL_RE, meta["namespace"], 63):
        errors.append(BAD_NAMESPACE.format(name=meta["namespace"]))
    return errors + _check_meta_map(meta, "labels") + _check_meta_map(meta, "annotations")


def validate(manifest: Any, *, strict: bool = True) -> list[str]:
    """Human-readable reasons the API server would refuse `manifest` ([] = valid)."""
    errors = check_top_level(manifest)
    if not isinstance(manifest, Mapping):
        return errors
    if strict:
        errors += [UNKNOWN_FIELD.format(path=path) for path in unknown_fields(manifest)]
    found = _Validator(schema()).iter_errors(apply_defaults(prune_unknown(manifest)))
    messages = sorted(f"{_format_path(e.absolute_path)}: {e.message}" for e in found)
    return errors + messages


# -- pruning, defaulting, merge patches -------------------------------------------------------


def _prune(node: Any, sch: Mapping[str, Any], path: str, dropped: list[str]) -> Any:
    if isinstance(node, list) and isinstance(sch.get("items"), Mapping):
        return [_prune(v, sch["items"], f"{path}[{i}]", dropped) for i, v in enumerate(node)]
    if not isinstance(node, Mapping) or "anyOf" in sch:
        return node
    props = sch.get("properties", {})
    extra = sch.get("additionalProperties")
    keep_unknown = sch.get("x-kubernetes-preserve-unknown-fields") or extra is True
    out = {}
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        if key in props:
            out[key] = _prune(value, props[key], where, dropped)
        elif isinstance(extra, Mapping):
            out[key] = _prune(value, extra, where, dropped)
        elif keep_unknown:
            out[key] = copy.deepcopy(value)
        else:
            dropped.append(where)
    return out


def _split_root(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """ObjectMeta and the type fields are the server's, not the schema's: keep them."""
    kept = {k: copy.deepcopy(v) for k, v in manifest.items() if k in ("apiVersion", "kind")}
    if "metadata" in manifest:
        kept["metadata"] = copy.deepcopy(manifest["metadata"])
    rest = {k: v for k, v in manifest.items() if k not in kept}
    return kept, rest


def prune_unknown(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without the fields the schema does not know, as the API server stores it."""
    kept, rest = _split_root(manifest)
    return {**kept, **_prune(rest, schema(), "", [])}


def unknown_fields(manifest: Mapping[str, Any]) -> list[str]:
    """Paths of the fields `prune_unknown` would drop."""
    dropped: list[str] = []
    _prune(_split_root(manifest)[1], schema(), "", dropped)
    return dropped


def _default(node: Any, sch: Mapping[str, Any]) -> None:
    if isinstance(node, list) and isinstance(sch.get("items"), Mapping):
        for item in node:
            _default(item, sch["items"])
    if not isinstance(node, dict):
        return
    for key, sub in sch.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node:
            _default(node[key], sub)
    if isinstance(sch.get("additionalProperties"), Mapping):
        for key, value in node.items():
            if key not in sch.get("properties", {}):
                _default(value, sch["additionalProperties"])


def apply_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with the schema's defaults filled in, as the API server does on create."""
    result = copy.deepcopy(dict(manifest))
    _default(result, schema())
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `patch` applied to a copy of `target`."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
