"""`?watch=true`: newline-delimited JSON events over a chunked HTTP response.

As the real server: no resourceVersion (or "0") starts with synthetic ADDED events for what
exists; a resourceVersion replays the changes after it from the window of recent changes, and
one older than the window gets a 200 response carrying a single ERROR event with a 410
`Expired` Status. Label and field selectors turn a change that makes an object (stop) match
into ADDED (DELETED). BOOKMARKs (with allowWatchBookmarks) every `bookmark_interval` seconds
and just before timeoutSeconds runs out; `sendInitialEvents=true` ends the initial events
with a bookmark annotated `k8s.io/initial-events-end`.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from . import errors
from .calls import Call
from .resources import Resource
from .selectors import SelectorError, parse_fields, parse_labels
from .store import Change, Expired, Store

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class ChunkedWriter:
    """HTTP/1.1 chunked transfer encoding on a handler's wfile."""

    def __init__(self, wfile: Any):
        self.wfile = wfile

    def write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def close(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def peer_closed(sock: socket.socket) -> bool:
    """True once the client has closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class Watcher:
    def __init__(self, store: Store, call: Call, *, default_timeout: float,
                 bookmark_interval: float):
        self.store = store
        self.call = call
        self.resource: Resource = call.resource
        try:  # parse before the response starts, so a bad selector is a plain 400
            self.labels = parse_labels(call.q("labelSelector"))
            self.fields = parse_fields(call.q("fieldSelector"), store.field_labels(self.resource))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        self.timeout = float(call.q("timeoutSeconds") or default_timeout)
        self.bookmarks = call.flag("allowWatchBookmarks")
        self.bookmark_interval = bookmark_interval
        self.initial = call.flag("sendInitialEvents")
        rv = call.q("resourceVersion")
        if rv not in (None, "", "0") and not rv.isdigit():
            raise errors.bad_request(f'invalid resource version "{rv}"')

    def _matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.call.namespace and meta.get("namespace") != self.call.namespace:
            return False
        return self.labels(meta.get("labels") or {}) and self.fields(obj)

    def translate(self, change: Change) -> dict[str, Any] | None:
        if change.resource is not self.resource:
            return None
        now = self._matches(change.object) if change.type != "DELETED" else False
        before = self._matches(change.old) if change.old is not None else False
        if change.type == "DELETED":
            return {"type": "DELETED", "object": change.object} if before else None
        if now and before:
            return {"type": "MODIFIED", "object": change.object}
        if now:
            return {"type": "ADDED", "object": change.object}
        if before:  # no longer matches: the watcher sees it go, with the new resourceVersion
            old = change.old or {}
            shown = {**old, "metadata": {**old.get("metadata", {}),
                                         "resourceVersion": str(change.rv)}}
            return {"type": "DELETED", "object": shown}
        return None

    def bookmark(self, rv: int, *, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return {"type": "BOOKMARK", "object": {
            "kind": self.resource.kind, "apiVersion": self.resource.api_version,
            "metadata": meta,
        }}

    def run(self, send: Callable[[dict[str, Any]], None], stopping: threading.Event,
            alive: Callable[[], bool]) -> None:
        """Stream events through `send` until the timeout, a stop or a gone client."""
        store = self.store
        start = time.monotonic()
        deadline = start + self.timeout
        next_bookmark = start + self.bookmark_interval
        rv_param = self.call.q("resourceVersion")
        with store.lock:
            if rv_param in (None, "", "0") or self.initial:
                first = [{"type": "ADDED", "object": o}
                         for o in store.raw_list(self.resource, self.call.namespace or None)
                         if self._matches(o)]
                last = store.rv
            else:
                first, last = [], int(rv_param)
        for event in first:
            send(event)
        if self.initial and self.bookmarks:
            send(self.bookmark(last, initial_end=True))
        while True:
            now = time.monotonic()
            if now >= deadline or stopping.is_set() or not alive():
                if self.bookmarks and now >= deadline:
                    send(self.bookmark(store.rv))
                return
            with store.lock:
                if store.rv <= last:
                    wait = min(0.25, deadline - now, max(next_bookmark - now, 0.01))
                    store.changed.wait(timeout=max(wait, 0.001))
                try:
                    changes = store.changes_after(last)
                except Expired as exc:
                    send({"type": "ERROR", "object": errors.expired(str(exc))})
                    return
                last = max(last, store.rv)
            for change in changes:
                event = self.translate(change)
                if event is not None:
                    send(event)
            if self.bookmarks and time.monotonic() >= next_bookmark:
                send(self.bookmark(last))
                next_bookmark = time.monotonic() + self.bookmark_interval


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
