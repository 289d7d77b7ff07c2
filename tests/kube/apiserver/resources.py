"""The resource types the test API server serves, and their discovery documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PGO_GROUP = "postgres-operator.crunchydata.com"
PGO_VERSION = "v1beta1"

CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    custom: bool = False  # a custom resource: unstructured, pruned, schema-validated
    generation: bool = True  # metadata.generation tracks spec changes
    unconditional_update: bool = True  # PUT without metadata.resourceVersion allowed
    delete_returns_object: bool = False  # else a Status Success
    field_labels: tuple[str, ...] = ()  # field selectors beyond metadata.name/namespace
    required: tuple[str, ...] = ()  # dotted paths a create must carry (built-in kinds)
    verbs: tuple[str, ...] = CRUD

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`postgresclusters.postgres-operator.crunchydata.com`, `pods`: as errors name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


POSTGRES_CLUSTER = Resource(
    PGO_GROUP, PGO_VERSION, "postgresclusters", "PostgresCluster",
    subresources=("status",), custom=True, unconditional_update=False,
    delete_returns_object=True,
)
NAMESPACE = Resource(
    "", "v1", "namespaces", "Namespace", namespaced=False, subresources=("status",),
    short_names=("ns",), generation=False, delete_returns_object=True,
    field_labels=("status.phase",),
)
POD = Resource(
    "", "v1", "pods", "Pod", subresources=("status", "exec", "log"), short_names=("po",),
    delete_returns_object=True,
    field_labels=(
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    ),
    required=("spec.containers",),
)
EVENT = Resource(
    "", "v1", "events", "Event", short_names=("ev",), generation=False,
    field_labels=(
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    ),
    required=("involvedObject",),
)
SECRET = Resource("", "v1", "secrets", "Secret", generation=False, field_labels=("type",))
STATEFUL_SET = Resource(
    "apps", "v1", "statefulsets", "StatefulSet", subresources=("status",),
    short_names=("sts",), required=("spec.selector", "spec.template"),
)
DEPLOYMENT = Resource(
    "apps", "v1", "deployments", "Deployment", subresources=("status",),
    short_names=("deploy",), required=("spec.selector", "spec.template"),
)
JOB = Resource(
    "batch", "v1", "jobs", "Job", subresources=("status",), field_labels=("status.successful",),
    required=("spec.template",),
)
CRON_JOB = Resource(
    "batch", "v1", "cronjobs", "CronJob", subresources=("status",), short_names=("cj",),
    required=("spec.schedule", "spec.jobTemplate"),
)

ALL = (POSTGRES_CLUSTER, NAMESPACE, POD, EVENT, SECRET, STATEFUL_SET, DEPLOYMENT, JOB, CRON_JOB)


class Registry:
    """Lookup by (group, version, plural), by kind, by plural; and discovery documents."""

    def __init__(self, resources: tuple[Resource, ...] = ALL):
        self.resources = resources
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_name: dict[str, Resource] = {}
        for r in resources:
            for name in (r.plural, r.kind, r.kind.lower(), r.qualified, *r.short_names):
                self._by_name.setdefault(name, r)

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def resolve(self, name: str | Resource) -> Resource:
        """A resource by plural, kind, short name or `plural.group` (the store's argument)."""
        if isinstance(name, Resource):
            return name
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown resource {name!r}") from None

    def for_object(self, obj: dict[str, Any]) -> Resource:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        for r in self.resources:
            if r.kind == kind and r.api_version == api_version:
                return r
        raise KeyError(f"unknown kind {api_version}/{kind}")

    def group_versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    # -- discovery --------------------------------------------------------------------------

    def api_versions(self, address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self._group(g, vs) for g, vs in self.group_versions().items()]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group(group, versions)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        members = [r for r in self.resources if (r.group, r.version) == (group, version)]
        if not members:
            return None
        out = []
        for r in members:
            entry: dict[str, Any] = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.custom:
                entry["categories"] = ["all", "postgres-operator"]
            out.append(entry)
            for sub in r.subresources:
                verbs = {"status": ["get", "patch", "update"], "log": ["get"]}.get(
                    sub, ["create", "get"]
                )
                kind = {"exec": "PodExecOptions", "log": "Pod"}.get(sub, r.kind)
                out.append(
                    {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": kind, "verbs": verbs}
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": out,
        }
