"""A kubernetes fleet sync lists once per namespace, whatever the number of clusters: the
only per-cluster calls left are the pgbackrest execs in each leader pod."""

from __future__ import annotations

import pytest

from tests.kube.apiserver import KubeServer
from tests.kube.test_services_backup import NS, Console, console, emu  # noqa: F401

pytestmark = pytest.mark.django_db


def _sync_calls(console: Console,  # noqa: F811
                kube_api, hippo, names: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    server: KubeServer = console.server
    for name in names:
        kube_api.create_cluster(NS, hippo(name))
    console.emu.settle()
    server.reset_calls()
    result = console.sync()
    assert result.errors == []
    calls: dict[str, int] = {}
    for (verb, resource), count in server.calls.items():
        calls[f"{verb} {resource}"] = calls.get(f"{verb} {resource}", 0) + count
    return calls


def test_list_and_get_calls_do_not_grow_with_the_fleet(console: Console, kube_api,  # noqa: F811
                                                         hippo) -> None:  # type: ignore[no-untyped-def]
    small = _sync_calls(console, kube_api, hippo, [f"a{n}" for n in range(3)])
    large = _sync_calls(console, kube_api, hippo, [f"b{n}" for n in range(9)])  # 12 in all
    reads = {k: v for k, v in large.items() if k.split()[0] in ("list", "get")
             and "exec" not in k}
    assert reads == {k: v for k, v in small.items() if k.split()[0] in ("list", "get")
                     and "exec" not in k}
    assert reads.get("list postgresclusters") == 1 and reads.get("list pods") == 1
    assert "get postgresclusters" not in reads
    # pgbackrest info (and repo-ls for the window) run in each cluster's leader pod.
    assert large["get pods/exec"] == 4 * small["get pods/exec"]
