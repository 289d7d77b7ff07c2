"""One parsed resource request, as the API layer sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .resources import Resource


@dataclass
class Call:
    """One parsed resource request."""

    resource: Resource
    namespace: str = ""  # "" for a cluster-scoped resource or a list across namespaces
    name: str = ""
    subresource: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)

    def q(self, key: str, default: str | None = None) -> str | None:
        values = self.query.get(key)
        return values[-1] if values else default

    def flag(self, key: str) -> bool:
        return (self.q(key) or "").lower() in ("true", "1")

    @property
    def dry_run(self) -> bool:
        values = self.query.get("dryRun") or []
        for value in values:
            if value != "All":
                raise errors.invalid("", "", "", [{
                    "reason": "FieldValueNotSupported", "field": "dryRun",
                    "message": f'Unsupported value: "{value}": supported values: "All"',
                }])
        return bool(values)

    @property
    def manager(self) -> str:
        """fieldManager, or what the server derives from the User-Agent."""
        return self.q("fieldManager") or (self.user_agent.split("/")[0] or "unknown")
