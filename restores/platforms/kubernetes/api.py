"""The one place that talks to the Kubernetes API (the official `kubernetes` client).

Reads return plain dicts parsed from the raw JSON (no model deserialisation: a fleet of a
thousand clusters and their pods parses in milliseconds). Writes are JSON merge patches and
creates of PostgresClusters only, always with the field manager `dr-console` and
`fieldValidation=Strict` (an unknown field is an error, not a silent drop). Errors become
the platform's: 404 `NotFound`, 409 `Conflict`/`AlreadyExists` (transient: read again and
retry), 429/5xx/timeouts/connection errors `TransientError`, other refusals `PermanentError`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
import websocket
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from ..base import PermanentError, TransientError
from ..manifests.specs import GROUP, VERSION

FIELD_MANAGER = "dr-console"
# Every write: a field the CRD does not know is refused (400), never dropped. The server's
# default (Warn) drops it with a Warning header the client discards, so a typo in a manifest
# the console built would vanish silently.
STRICT = "Strict"
USER_AGENT = "dr-console"
PLURAL = "postgresclusters"

NOT_ALLOWED = (
    "The console's Kubernetes account may not {what} (HTTP {status}): {message}. "
    "{needs}Apply deploy/rbac.yaml for this namespace."
)
NEEDS = "It needs the grant: {grant}. "
EXEC_GRANT = 'verbs get and create on "pods/exec" (API group "") in namespace {namespace}'
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")
API_DOWN = "The Kubernetes API did not answer {what}: {error}"
API_ERROR = "The Kubernetes API failed to {what} (HTTP {status}): {message}"
API_REFUSED = "The Kubernetes API refused to {what} (HTTP {status}): {message}"


class NotFound(PermanentError):
    pass


class Conflict(TransientError):
    """409: the object changed under us (or, with `exists`, is already there)."""

    def __init__(self, message: str, *, exists: bool = False, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        self.exists = exists


def load_client(*, kubeconfig: str = "", context: str = "", in_cluster: bool = False):
    """An ApiClient from the pod's service account, or a kubeconfig file and context."""
    try:
        if in_cluster:
            config = kubernetes.client.Configuration()
            kubernetes.config.load_incluster_config(client_configuration=config)
        else:
            config = kubernetes.client.Configuration()
            kubernetes.config.load_kube_config(
                config_file=kubeconfig or None, context=context or None,
                client_configuration=config,
            )
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise PermanentError(f"Cannot configure the Kubernetes client: {exc}") from exc
    client = kubernetes.client.ApiClient(config)
    client.user_agent = USER_AGENT
    return client


def _body(exc: ApiException) -> str:
    body = exc.body or ""
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body)


def _status_message(exc: ApiException) -> tuple[str, str, list[str]]:
    """(message, reason, cause messages) of an API Status body."""
    try:
        body = json.loads(_body(exc) or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or exc.body or ""), "", []
    causes = [
        f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
        for c in (body.get("details") or {}).get("causes") or ()
    ]
    return str(body.get("message") or exc.reason or ""), str(body.get("reason") or ""), causes


def _handshake_answer(exc: ApiException) -> ApiException | None:
    """What the API server answered a pod exec's websocket handshake with, as the HTTP
    error it is. The client reports a refused handshake as status 0 ("Handshake status 403
    Forbidden ..."), which reads as a server that did not answer; the websocket exception
    it was raised from keeps the status and the Status body."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, websocket.WebSocketBadStatusException):
        answer = ApiException(status=cause.status_code, reason=cause.status_message or "")
        answer.body = cause.resp_body or b""
        return answer
    match = _HANDSHAKE.search(str(exc.reason or ""))
    return ApiException(status=int(match.group(1)), reason=str(exc.reason)) if match else None


def translate(exc: BaseException, what: str, *, grant: str = "") -> Exception:
    """The platform error for a client exception raised while trying to `what`; `grant`:
    the RBAC grant that allows it, named when the answer is 401 or 403."""
    if isinstance(exc, ApiException) and not exc.status:
        exc = _handshake_answer(exc) or exc
    if isinstance(exc, ApiException) and exc.status:
        message, reason, _ = _status_message(exc)
        status, detail = exc.status, _body(exc)[:4000]
        if status == 404:
            return NotFound(API_REFUSED.format(what=what, status=status, message=message))
        if status == 409:
            text = API_REFUSED.format(what=what, status=status, message=message)
            return Conflict(text, exists=reason == "AlreadyExists", detail=detail)
        if status in (401, 403):
            return PermanentError(NOT_ALLOWED.format(
                what=what, status=status, message=message,
                needs=NEEDS.format(grant=grant) if grant else ""))
        if status == 429 or status >= 500:
            return TransientError(API_ERROR.format(what=what, status=status, message=message),
                                  detail=detail)
        return PermanentError(API_REFUSED.format(what=what, status=status, message=message),
                              detail=detail)
    # status 0: the websocket handshake or the connection failed; urllib3: timeouts, resets.
    return TransientError(API_DOWN.format(what=what, error=exc))


_CLIENT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class Kube:
    """Thin, typed access to what the platform uses; every call has a timeout."""

    def __init__(self, client: kubernetes.client.ApiClient, *, timeout: float = 30.0) -> None:
        self.client = client
        self.timeout = timeout
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        # kubernetes.stream.stream() swaps the ApiClient's `request` method while it opens
        # the websocket: on a shared client, a concurrent list (the watch thread) or another
        # exec would go down the wrong path. Each thread execs through a client of its own
        # (the inventory sync runs several at once).
        self._exec_clients = threading.local()

    def _raw(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            # The client ignores a float timeout: only an int or a (connect, read) pair works.
            timeout = (self.timeout, self.timeout)
            resp = func(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
            return json.loads(resp.data or b"null")
        except _CLIENT_ERRORS as exc:
            raise translate(exc, what) from exc

    # -- PostgresClusters --------------------------------------------------------------------

    def list_clusters(self, namespace: str) -> tuple[list[dict[str, Any]], str]:
        """Every PostgresCluster of a namespace in ONE request, and the list's resourceVersion."""
        data = self._raw(
            f"list PostgresClusters in {namespace}",
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
        )
        return list(data.get("items") or []), str(data["metadata"].get("resourceVersion", ""))

    def get_cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._raw(
                f"read PostgresCluster {namespace}/{name}",
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
            )
        except NotFound:
            return None

    def create_cluster(self, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        extra = {"dry_run": "All"} if dry_run else {}
        return self._raw(
            f"create PostgresCluster {namespace}/{name}",
            self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body,
            field_manager=FIELD_MANAGER, field_validation=STRICT, **extra,
        )

    def patch_cluster(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (CustomObjectsApi sends application/merge-patch+json). Carry
        metadata.resourceVersion in `patch` to make it conditional (409 when stale)."""
        return self._raw(
            f"patch PostgresCluster {namespace}/{name}",
            self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
            patch, field_manager=FIELD_MANAGER, field_validation=STRICT,
        )

    def delete_cluster(self, namespace: str, name: str) -> None:
        """Delete a PostgresCluster (a drill's scratch copy); already gone is not an error."""
        try:
            self._raw(f"delete PostgresCluster {namespace}/{name}",
                      self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace,
                      PLURAL, name)
        except NotFound:
            return

    def watch_clusters(self, namespace: str, resource_version: str, timeout: int) -> Any:
        """An open watch response (newline-delimited events) from `resource_version`."""
        try:
            return self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, watch=True,
                resource_version=resource_version, allow_watch_bookmarks=True,
                timeout_seconds=timeout, _preload_content=False,
                _request_timeout=(self.timeout, timeout + self.timeout),
            )
        except _CLIENT_ERRORS as exc:
            raise translate(exc, f"watch PostgresClusters in {namespace}") from exc

    # -- what PGO made ---------------------------------------------------------------------

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        data = self._raw(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace,
                         label_selector=selector)
        return list(data.get("items") or [])

    def list_events(self, namespace: str, field_selector: str) -> list[dict[str, Any]]:
        data = self._raw(f"list events in {namespace}", self.core.list_namespaced_event,
                         namespace, field_selector=field_selector)
        return list(data.get("items") or [])

    def list_workloads(self, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
        """statefulsets, deployments, cronjobs or jobs with a label selector."""
        func = {
            "statefulsets": self.apps.list_namespaced_stateful_set,
            "deployments": self.apps.list_namespaced_deployment,
            "cronjobs": self.batch.list_namespaced_cron_job,
            "jobs": self.batch.list_namespaced_job,
        }[kind]
        data = self._raw(f"list {kind} in {namespace}", func, namespace, label_selector=selector)
        return list(data.get("items") or [])

    def _exec_core(self) -> kubernetes.client.CoreV1Api:
        core = getattr(self._exec_clients, "core", None)
        if core is None:
            client = kubernetes.client.ApiClient(self.client.configuration)
            client.user_agent = self.client.user_agent
            core = self._exec_clients.core = kubernetes.client.CoreV1Api(client)
        return core

    def exec(self, namespace: str, pod: str, container: str,
             command: list[str]) -> tuple[int, str, str]:
        """Run `command` in a container (as `kubectl exec`): (exit code, stdout, stderr)."""
        what = f"run {command[0]} in pod {namespace}/{pod}"
        try:
            resp = stream(
                self._exec_core().connect_get_namespaced_pod_exec, pod, namespace,
                command=command, container=container, stderr=True, stdin=False,
                stdout=True, tty=False, _preload_content=False,
                _request_timeout=(self.timeout, self.timeout),
            )
            try:
                resp.run_forever(timeout=self.timeout)
                out, err, code = resp.read_stdout(), resp.read_stderr(), resp.returncode
            finally:
                resp.close()
        except _CLIENT_ERRORS as exc:
            error = translate(exc, what, grant=EXEC_GRANT.format(namespace=namespace))
            if isinstance(error, NotFound):  # the pod went (a new leader): ask again later
                error = TransientError(error.message)
            raise error from exc
        except Exception as exc:  # websocket errors have no common base worth importing
            raise TransientError(API_DOWN.format(what=what, error=exc)) from exc
        if code is None:
            raise TransientError(API_DOWN.format(what=what, error="no exit status"))
        return code, out or "", err or ""
