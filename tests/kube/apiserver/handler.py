"""HTTP: routing of API paths to resources, verbs, faults, responses."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import api, errors, execution, reads
from .calls import Call
from .faults import Request
from .resources import POD, Resource
from .watch import ChunkedWriter, Watcher, encode, peer_closed

if TYPE_CHECKING:
    from .server import KubeServer

log = logging.getLogger(__name__)

VERSION_INFO = {
    "major": "1", "minor": "33", "gitVersion": "v1.33.0+dr-console-test",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass
class Route:
    """What a path names: a discovery document, or a resource (collection, item, subresource)."""

    document: Any = None
    resource: Resource | None = None
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def resolve(server: KubeServer, path: str) -> Route:
    registry = server.registry
    parts = [p for p in path.split("/") if p]
    if path == "/version":
        return Route(document=VERSION_INFO)
    if path in ("/healthz", "/readyz", "/livez"):
        return Route(document="ok")
    if not parts or parts[0] not in ("api", "apis"):
        raise errors.no_route()
    if parts[0] == "api":
        if len(parts) == 1:
            return Route(document=registry.api_versions(f"127.0.0.1:{server.port}"))
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) == 1:
            return Route(document=registry.api_group_list())
        if len(parts) == 2:
            doc = registry.api_group(parts[1])
            if doc is None:
                raise errors.no_route()
            return Route(document=doc)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        doc = registry.resource_list(group, version)
        if doc is None:
            raise errors.no_route()
        return Route(document=doc)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        inner = registry.lookup(group, version, rest[2])
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
    resource = registry.lookup(group, version, rest[0])
    if resource is None or len(rest) > 3:
        raise errors.no_route()
    if resource.namespaced and not namespace and len(rest) > 1:
        raise errors.no_route()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in resource.subresources:
        raise errors.no_route()
    return Route(resource=resource, namespace=namespace, name=name, subresource=sub)


def verb_of(method: str, route: Route, watch: bool) -> str:
    if route.resource is None:
        return method.lower()
    if method == "GET":
        return "get" if route.name else ("watch" if watch else "list")
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body meet delayed ACKs: 40 ms a call
    server_version = "dr-console-test-apiserver"
    kube: KubeServer  # set by the server on a subclass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # -- responses ---------------------------------------------------------------------------

    def send_body(self, code: int, body: Any, headers: dict[str, str] | None = None,
                  warnings: list[str] = ()) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(body, separators=(",", ":")).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for warning in warnings:
            self.send_header("Warning", "299 - " + json.dumps(warning))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch ----------------------------------------------------------------------------

    def dispatch(self, method: str) -> None:
        kube = self.kube
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        user_agent = self.headers.get("User-Agent", "")
        watch = (query.get("watch") or [""])[-1].lower() in ("true", "1")
        try:
            route, failure = resolve(kube, url.path), None
        except errors.ApiError as exc:
            route, failure = Route(), exc
        verb = verb_of(method, route, watch)
        res = route.resource
        resource = (res.plural + (f"/{route.subresource}" if route.subresource else "")
                    if res else url.path)
        kube.ledger.record(Request(method, url.path, url.query, verb, resource,
                                   route.namespace, route.name, content_type, user_agent))
        try:
            fault = kube.faults.take(method, url.path, url.query, verb, resource)
            if fault is not None and fault.forbid:
                # An exec is authorized as "create" on pods/exec (its websocket is a GET).
                raise errors.forbidden("create" if resource.endswith("/exec") else verb,
                                       resource, route.namespace, route.name, fault.user)
            if fault is not None and self.inject(fault):
                return
            if failure is not None:
                raise failure
            if route.resource is None:
                self.send_body(200, route.document)
                return
            call = Call(route.resource, route.namespace, route.name, route.subresource,
                        query, user_agent)
            self.serve_resource(method, verb, call, raw, content_type)
        except errors.ApiError as exc:
            self.send_body(exc.code, exc.body, exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            log.exception("test API server: %s %s failed", method, self.path)
            self.send_body(500, errors.status(500, f"Internal error occurred: {exc!r}",
                                              details={"causes": [{"message": repr(exc)}]}))

    def inject(self, fault: Any) -> bool:
        """Apply a fault; True when it answered (or dropped) the request."""
        if fault.hang and self.kube.stopping.wait(fault.hang):
            self.drop()
            return True
        if fault.drop:
            self.drop()
            return True
        if fault.status:
            exc = errors.generic(fault.status, fault.message)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            self.send_body(exc.code, exc.body, headers)
            return True
        return False

    def serve_resource(self, method: str, verb: str, call: Call, raw: bytes,
                       content_type: str) -> None:
        store, sub = self.kube.store, call.subresource
        if sub in ("exec", "log"):
            if method not in ("GET", "POST") or (sub == "log" and method != "GET"):
                raise errors.method_not_allowed(method)
            self.exec(call) if sub == "exec" else self.logs(call)
            return
        if sub and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed(method)
        if verb == "get":
            body = reads.get(store, call)
            self.send_body(200, body)
        elif verb == "list":
            self.send_body(200, reads.list_(store, call))
        elif verb == "watch":
            self.watch(call)
        elif verb == "create":
            if call.name:
                raise errors.method_not_allowed(method)
            code, obj = api.create(store, call, raw, content_type)
            self.send_body(code, obj, warnings=call.warnings)
        elif verb == "update":
            code, obj = api.replace(store, call, raw, content_type)
            self.send_body(code, obj, warnings=call.warnings)
        elif verb == "patch":
            code, obj = api.patch(store, call, content_type, raw)
            self.send_body(code, obj, warnings=call.warnings)
        elif verb == "delete":
            self.send_body(200, api.delete(store, call, raw))
        elif verb == "deletecollection":
            self.send_body(200, api.delete_collection(store, call, raw))
        else:
            raise errors.method_not_allowed(method)

    def watch(self, call: Call) -> None:
        kube = self.kube
        watcher = Watcher(kube.store, call, default_timeout=kube.watch_timeout,
                          bookmark_interval=kube.bookmark_interval)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        writer = ChunkedWriter(self.wfile)
        try:
            watcher.run(lambda event: writer.write(encode(event)), kube.stopping,
                        lambda: not peer_closed(self.connection))
            writer.close()
        except OSError:
            self.close_connection = True

    # -- pods/exec and pods/log --------------------------------------------------------------

    def _container(self, call: Call) -> tuple[dict[str, Any], str]:
        pod = reads.get(self.kube.store, Call(POD, call.namespace, call.name))
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        every = names + [c.get("name") for k in ("initContainers", "ephemeralContainers")
                         for c in spec.get(k) or []]
        wanted = call.q("container")
        if wanted:
            if wanted not in every:
                raise errors.bad_request(f"container {wanted} is not valid for pod {call.name}")
            return pod, wanted
        if len(names) == 1:
            return pod, names[0]
        raise errors.bad_request(
            f"a container name must be specified for pod {call.name}, choose one of: "
            f"[{' '.join(names)}]"
        )

    def exec(self, call: Call) -> None:
        pod, container = self._container(call)
        command = call.query.get("command") or []
        if not command:
            raise errors.bad_request("you must specify at least 1 command")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request(
                f"cannot exec into a container in a completed pod; current phase is {phase}"
            )
        if (self.headers.get("Upgrade") or "").lower() != "websocket":
            raise errors.bad_request("Upgrade request required")
        key = self.headers.get("Sec-WebSocket-Key")
        if not key:
            raise errors.bad_request("missing Sec-WebSocket-Key")
        offered = self.headers.get("Sec-WebSocket-Protocol") or "v4.channel.k8s.io"
        protocol = execution.choose_protocol(offered)
        if protocol is None:
            raise errors.bad_request(f"unsupported subprotocols: {offered}")
        handler = self.kube.exec_handler
        execution.serve(self, protocol, key,
                        lambda: handler(call.namespace, call.name, container, list(command)),
                        command)

    def logs(self, call: Call) -> None:
        _pod, container = self._container(call)
        text = self.kube.log_handler(call.namespace, call.name, container)
        self.send_body(200, text if isinstance(text, str) else text.decode())
