"""Small helpers shared by the test API server's tests."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException

NS = "db"


def error(exc_info: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(exc_info.value.body)


def pod(name: str, namespace: str = NS, **labels: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "database", "image": "postgres"}]},
        "status": {"phase": "Running"},
    }
