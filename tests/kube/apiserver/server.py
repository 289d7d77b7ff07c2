"""KubeServer: the test API server on 127.0.0.1 and a free port, in background threads."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from typing import Any

import kubernetes.client

from .execution import CommandTable, ExecHandler
from .faults import Faults, Ledger, Request
from .handler import Handler
from .resources import Registry
from .store import DEFAULT_NAMESPACES, Hook, Store

log = logging.getLogger(__name__)
LogHandler = Any  # Callable[[str, str, str], str]


class _HTTPServer(ThreadingHTTPServer):
    """Tracks connections and their threads, so stop() can close and join them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any):
        self._track = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._run, args=(request, client_address),
                                  daemon=True, name="kube-test-apiserver-conn")
        with self._track:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _run(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._track:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a stopped watch, a closed pool) are not errors."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        log.error("test API server: request from %s failed", client_address, exc_info=True)

    def close_all(self) -> list[threading.Thread]:
        with self._track:
            connections, threads = list(self.connections), list(self.threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return threads


class KubeServer:
    """A Kubernetes API server for tests, that the real `kubernetes` client talks to.

    server = KubeServer().start(); api = kubernetes.client.CustomObjectsApi(server.api_client())
    ... server.stop()  (or `with KubeServer() as server:`)
    """

    def __init__(
        self,
        *,
        event_window: int = 1000,
        bookmark_interval: float = 1.0,
        watch_timeout: float = 60.0,
        strict_namespaces: bool = False,
        namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
        exec_handler: ExecHandler | None = None,
    ):
        self.registry = Registry()
        self.store = Store(self.registry, window=event_window,
                           strict_namespaces=strict_namespaces, namespaces=namespaces)
        self.faults = Faults()
        self.ledger = Ledger()
        self.exec_handler: ExecHandler = exec_handler or CommandTable()
        self.pod_logs: dict[tuple[str, str, str], str] = {}
        self.log_handler: LogHandler = lambda ns, pod, container: self.pod_logs.get(
            (ns, pod, container), ""
        )
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KubeServer:
        if self._httpd is not None:
            return self
        handler = type("BoundHandler", (Handler,), {"kube": self})
        self.stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
            name="kube-test-apiserver", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        httpd.shutdown()
        threads = httpd.close_all()
        httpd.server_close()
        for thread in threads:
            thread.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> KubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where it is, and clients for it -------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the test API server is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_config(self, **settings: Any) -> kubernetes.client.Configuration:
        """A client Configuration for this server (plain HTTP, no auth); `settings` are set
        as attributes (e.g. retries=False)."""
        config = kubernetes.client.Configuration()
        config.host = self.url
        for key, value in settings.items():
            setattr(config, key, value)
        return config

    def api_client(self, **settings: Any) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.client_config(**settings))

    # -- what tests look at --------------------------------------------------------------------

    @property
    def on_change(self) -> list[Hook]:
        """Callables `hook(event_type, obj, old)` called after each committed write (HTTP or
        store), in the writer's thread, before the HTTP response is sent; append to it."""
        return self.store.hooks

    @property
    def hook_errors(self) -> list[BaseException]:
        return self.store.hook_errors

    @property
    def calls(self) -> Counter:
        """Counter of (verb, resource), e.g. calls[("list", "postgresclusters")]."""
        return self.ledger.calls

    @property
    def requests(self) -> list[Request]:
        return self.ledger.requests

    def reset_calls(self) -> None:
        self.ledger.clear()

    @property
    def event_window(self) -> int:
        return self.store.window

    @event_window.setter
    def event_window(self, value: int) -> None:
        self.store.window = value
