"""Pod exec through `kubernetes.stream.stream(...)`, and the WebSocket wire format."""

from __future__ import annotations

import json

import pytest
import websocket
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from tests.kube.apiserver import sample_path

NS = "db"
POD = "hippo-00-abcd-0"
INFO = ["pgbackrest", "info", "--output=json"]


@pytest.fixture
def primary(kube_server) -> dict:
    return kube_server.store.put({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NS, "labels": {
            "postgres-operator.crunchydata.com/cluster": "hippo",
            "postgres-operator.crunchydata.com/role": "master"}},
        "spec": {"containers": [{"name": "database", "image": "postgres"},
                                {"name": "replication-cert-copy", "image": "postgres"}]},
        "status": {"phase": "Running"},
    })


def run(kube_api, command, container="database", pod=POD):
    """The way to exec that keeps stdout intact and reads the exit code."""
    resp = stream(kube_api.core.connect_get_namespaced_pod_exec, pod, NS, command=command,
                  container=container, stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=10)
    return resp.read_stdout(), resp.read_stderr(), resp.returncode


def test_pgbackrest_info_returns_the_recorded_json(kube_api, kube_server, primary):
    out, err, code = run(kube_api, INFO)
    assert code == 0 and err == ""
    assert json.loads(out) == json.loads(sample_path().read_text())
    assert kube_server.exec_handler.calls == [(NS, POD, "database", INFO)]
    assert kube_server.calls[("get", "pods/exec")] == 1

    out, _, code = run(kube_api, ["bash", "-ceu", "--", "pgbackrest info --output=json "
                                  "--repo=2"])
    assert code == 0
    assert {b["database"]["repo-key"] for b in json.loads(out)[0]["backup"]} == {2}


def test_default_preloaded_output_is_not_json(kube_api, primary):
    """A kubernetes client quirk: with _preload_content left True, output that parses as JSON
    comes back as str() of the parsed value (Python repr), stdout and stderr mixed, and the
    exit code is lost. Use _preload_content=False as `run` does."""
    out = stream(kube_api.core.connect_get_namespaced_pod_exec, POD, NS, command=INFO,
                 container="database", stderr=True, stdin=False, stdout=True, tty=False)
    assert out == str(json.loads(sample_path().read_text()))


def test_unknown_commands_exit_non_zero(kube_api, primary):
    out, err, code = run(kube_api, ["patronictl", "list"])
    assert (out, code) == ("", 1)
    assert "patronictl" in err
    _, _, code = run(kube_api, INFO, container="replication-cert-copy")
    assert code == 1


def test_registered_commands_answer_by_prefix_and_a_handler_can_answer_all(
    kube_api, kube_server, primary
):
    kube_server.exec_handler.register(["patronictl", "list"], (0, "[]\n", ""))
    kube_server.exec_handler.register(["sh", "-c"], lambda ns, pod, c, cmd: (3, "", "boom\n"))
    assert run(kube_api, ["patronictl", "list", "--format", "json"]) == ("[]\n", "", 0)
    assert run(kube_api, ["sh", "-c", "exit 3"]) == ("", "boom\n", 3)

    kube_server.exec_handler = lambda ns, pod, container, command: (0, b"\xffbinary", "")
    out, _, code = run(kube_api, ["anything"])
    assert code == 0 and out.endswith("binary")


def test_an_unknown_pod_or_a_missing_container_fails_the_websocket_handshake(kube_api, primary):
    with pytest.raises(ApiException) as exc:  # the client reports these as status 0
        run(kube_api, INFO, pod="nope")
    assert exc.value.status == 0
    assert "Handshake status 404" in exc.value.reason
    with pytest.raises(ApiException) as exc:
        stream(kube_api.core.connect_get_namespaced_pod_exec, POD, NS, command=INFO,
               stderr=True, stdin=False, stdout=True, tty=False)
    assert "Handshake status 400" in exc.value.reason
    assert "a container name must be specified" in exc.value.reason


def test_the_websocket_speaks_v4_channel_and_sends_the_exit_status_on_channel_3(
    kube_server, primary
):
    url = (f"ws://127.0.0.1:{kube_server.port}/api/v1/namespaces/{NS}/pods/{POD}/exec?"
           "command=false&container=database&stdout=true&stderr=true")
    ws = websocket.create_connection(url, subprotocols=["v4.channel.k8s.io"])
    try:
        assert ws.getsubprotocol() == "v4.channel.k8s.io"
        frames = []
        while True:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            assert opcode == websocket.ABNF.OPCODE_BINARY
            frames.append((frame.data[0], frame.data[1:]))
    finally:
        ws.close()
    assert [channel for channel, _ in frames] == [2, 3]
    assert json.loads(frames[1][1]) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        "['false'], exit code 1",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "1"}]},
    }


def test_pod_logs_return_the_text_set_for_the_container(kube_api, kube_server, primary):
    kube_server.pod_logs[(NS, POD, "database")] = "LOG:  database system is ready\n"
    text = kube_api.core.read_namespaced_pod_log(POD, NS, container="database")
    assert text == "LOG:  database system is ready\n"
