"""A real Milvus standalone server (PyPI ``milvus`` 2.3.5, ``milvus-server``) for the tests that need one.

Started once per test session on loopback ports of its own, in a temp data folder; skipped with
a reason when the package is not installed. ~40 s to start on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 180.0
_PORT_OPTIONS = ("--proxy-port", "--root-coord-port", "--proxy-internal-port", "--query-coord-port",
                 "--query-node-port", "--index-coord-port", "--index-node-port", "--data-coord-port",
                 "--data-node-port")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def milvus_server() -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT`` of a fresh server; stop it and remove its data afterwards."""
    binary = shutil.which("milvus-server")
    if binary is None:
        import pytest

        pytest.skip("the Milvus server package is not installed: pip install 'milvus==2.3.5'")
    data = Path(tempfile.mkdtemp(prefix="localmem-milvus-"))
    ports = _free_ports(len(_PORT_OPTIONS))
    args = [binary, "--data", str(data)]
    for option, port in zip(_PORT_OPTIONS, ports, strict=True):
        args += [option, str(port)]
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(ports[0], process, data)
        yield f"http://127.0.0.1:{ports[0]}"
    finally:
        # milvus-server runs the real binary as a child: stop the whole group it leads.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _wait(port: int, process: subprocess.Popen[bytes], data: Path) -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (data / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"milvus-server exited {process.returncode}: {tail}")
        try:
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=5)
            client.list_collections()
            client.close()
            return
        except Exception:
            time.sleep(1)
    raise RuntimeError(f"milvus-server did not answer on port {port} within {START_TIMEOUT_S}s")
