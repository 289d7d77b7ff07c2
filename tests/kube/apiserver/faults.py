"""Fault injection and request accounting for tests."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """Matches requests by any of: HTTP method, a regex searched in the path (no query),
    a regex searched in the query string, the API verb (get, list, watch, create, update,
    patch, delete, deletecollection) and the resource (`postgresclusters`, `pods/exec`).
    Then, for the next `times` matches: hang `hang` seconds (and carry on unless a status or
    drop is set too), answer `status` with a Status body, or drop the connection."""

    method: str | None = None
    path: str | None = None
    query: str | None = None
    verb: str | None = None
    resource: str | None = None
    status: int | None = None
    message: str = "injected fault"
    forbid: bool = False
    user: str = "system:serviceaccount:dr-console:dr-console"
    hang: float = 0.0
    drop: bool = False
    times: int = 1
    retry_after: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str, query: str, verb: str, resource: str) -> bool:
        return (
            (self.method is None or self.method.upper() == method)
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.query is None or re.search(self.query, query) is not None)
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
        )


class Faults:
    """`server.faults`: `add(...)` (or the shorthands) queues a fault; the first live fault
    that matches a request applies to it and counts down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[Fault] = []

    def add(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self.pending.append(fault)
        return fault

    def error(self, status: int = 500, times: int = 1, **match: Any) -> Fault:
        return self.add(status=status, times=times, **match)

    def hang(self, seconds: float, times: int = 1, **match: Any) -> Fault:
        return self.add(hang=seconds, times=times, **match)

    def forbid(self, times: int = 1, **match: Any) -> Fault:
        return self.add(forbid=True, times=times, **match)

    def drop(self, times: int = 1, **match: Any) -> Fault:
        return self.add(drop=True, times=times, **match)

    def clear(self) -> None:
        with self._lock:
            self.pending.clear()

    def take(self, method: str, path: str, query: str, verb: str, resource: str) -> Fault | None:
        with self._lock:
            for fault in self.pending:
                if fault.hits < fault.times and fault.matches(method, path, query, verb,
                                                              resource):
                    fault.hits += 1
                    return fault
        return None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    verb: str  # the API verb, or the lower-case HTTP method for non-resource paths
    resource: str  # plural[/subresource], or the path for non-resource requests
    namespace: str
    name: str
    content_type: str
    user_agent: str


@dataclass
class Ledger:
    """Every request, and a Counter of (verb, resource) for "exactly N list calls" tests."""

    requests: list[Request] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            self.calls[(request.verb, request.resource)] += 1

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.calls.clear()
