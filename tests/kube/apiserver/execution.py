"""Pod exec over WebSocket (RFC 6455 by hand), as the kubelet streams it through the API server
with the `v4.channel.k8s.io` subprotocol: binary frames whose first byte is the channel
(1 stdout, 2 stderr, 3 the final Status), then a close frame.

Commands are answered by a pluggable handler: `handler(namespace, pod, container, command)`
returns `(exit_code, stdout, stderr)` (str or bytes). `CommandTable` is the default one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import socket
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.kube.apiserver import crd

ExecResult = tuple[int, str | bytes, str | bytes]
ExecHandler = Callable[[str, str, str, list[str]], ExecResult]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
             "v2.channel.k8s.io", "channel.k8s.io")
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
STDOUT, STDERR, ERROR = 1, 2, 3


def sample_path(name: str = "pgbackrest-info.sample.json") -> Path:
    """A recorded file beside the CRD (shared/pgo/), wherever $DR_PGO_CRD points."""
    return crd.crd_path().parent / name


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324


def choose_protocol(offered: str) -> str | None:
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    for protocol in PROTOCOLS:
        if protocol in wanted:
            return protocol
    return None


def frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: FIN set, never masked."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_frame(rfile: Any) -> tuple[int, bytes] | None:
    """One (masked) client frame; None at end of stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    masked = head[1] & 0x80
    if n == 126:
        n = struct.unpack("!H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if masked else b"\0\0\0\0"
    data = rfile.read(n)
    if len(data) < n:
        return None
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def exit_status(code: int, command: Sequence[str]) -> dict[str, Any]:
    """The v4 Status on channel 3, as the kubelet writes it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"{list(command)}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def serve(handler: Any, protocol: str, key: str, run: Callable[[], ExecResult],
          command: Sequence[str]) -> None:
    """Upgrade the connection of an http.server handler, run the command, stream the result."""
    handler.close_connection = True
    handler.send_response_only(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(key))
    handler.send_header("Sec-WebSocket-Protocol", protocol)
    handler.end_headers()
    handler.wfile.flush()
    try:
        code, out, err = run()
    except Exception as exc:  # a broken handler is a failed command, visible on stderr
        code, out, err = 1, b"", f"exec handler failed: {exc!r}".encode()
    out, err = _bytes(out), _bytes(err)
    frames = b""
    for channel, data in ((STDOUT, out), (STDERR, err)):
        if data:
            frames += frame(OP_BINARY, bytes([channel]) + data)
    if protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
        status = json.dumps(exit_status(code, command)).encode()
    else:  # the older protocols send the error text only
        status = f"command terminated with non-zero exit code: {code}".encode() if code else b""
    if status:
        frames += frame(OP_BINARY, bytes([ERROR]) + status)
    frames += frame(OP_CLOSE, struct.pack("!H", 1000))
    try:
        handler.wfile.write(frames)
        handler.wfile.flush()
        handler.connection.settimeout(2.0)
        while (got := read_frame(handler.rfile)) is not None:  # until the client's close
            if got[0] == OP_CLOSE:
                break
    except OSError:
        pass
    finally:
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- the default handler ----------------------------------------------------------------------


def _words(command: Sequence[str]) -> list[str]:
    """The words of a command, unwrapping `bash -c "..."` / `sh -ceu -- "..."`."""
    words = list(command)
    if words and os.path.basename(words[0]) in ("bash", "sh"):
        rest = [w for w in words[1:] if w != "--"]
        if rest and rest[0].startswith("-") and "c" in rest[0] and len(rest) > 1:
            return shlex.split(rest[1])
    return words


def pgbackrest_info(words: list[str], path: Path | None = None) -> ExecResult:
    """`pgbackrest info --output=json [--stanza=S] [--repo=N] [--set=L]` answered from the
    recorded sample (shared/pgo/pgbackrest-info.sample.json)."""
    opts = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
    if opts.get("output") != "json":
        return 1, "", "ERROR: [031]: this test server only records --output=json\n"
    if "set" in opts:
        data = json.loads(sample_path("pgbackrest-info-set.sample.json").read_text())
        labels = [b["label"] for s in data for b in s["backup"]]
        if opts["set"] not in labels:
            return 1, "", f"ERROR: [031]: backup set {opts['set']} is not valid\n"
    else:
        data = json.loads((path or sample_path()).read_text())
    if "stanza" in opts:
        data = [s for s in data if s.get("name") == opts["stanza"]]
    if "repo" in opts:
        key = int(opts["repo"])
        for stanza in data:
            for part in ("backup", "archive"):
                stanza[part] = [x for x in stanza[part] if x["database"]["repo-key"] == key]
            stanza["repo"] = [r for r in stanza["repo"] if r["key"] == key]
    return 0, json.dumps(data), ""


class CommandTable:
    """The default exec handler: registered answers by (container, command prefix), then
    `pgbackrest info --output=json` in the `database` container from the recorded sample;
    anything else exits 1. `calls` records every (namespace, pod, container, command)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, list[str]]] = []
        self._entries: list[tuple[str | None, list[str], ExecResult | ExecHandler]] = []

    def register(self, prefix: Sequence[str], result: ExecResult | ExecHandler,
                 container: str | None = None) -> None:
        """Answer commands starting with `prefix`, as sent or as the words of the script of a
        `bash -c` / `sh -c`; the newest registration wins.
        `result` is (exit_code, stdout, stderr) or a handler called with the same arguments
        as the table."""
        self._entries.insert(0, (container, list(prefix), result))

    def __call__(self, namespace: str, pod: str, container: str,
                 command: list[str]) -> ExecResult:
        self.calls.append((namespace, pod, container, list(command)))
        words = _words(command)
        for wanted, prefix, result in self._entries:
            if wanted not in (None, container) or prefix not in (
                list(command)[: len(prefix)], words[: len(prefix)]
            ):
                continue
            return result(namespace, pod, container, command) if callable(result) else result
        if container == "database" and words[:2] == ["pgbackrest", "info"]:
            return pgbackrest_info(words)
        name = words[0] if words else ""
        return 1, "", f"{name}: command not answered by the test API server\n"
