"""A real Milvus standalone server (PyPI ``milvus`` 2.3.5) for the tests that need one.

Started in a temp data folder on ports of its own; skipped with a reason when the package is not
installed. ~40 s to start on 2 cores.

Why a launcher instead of ``milvus-server --etcd-port``: the embedded etcd listens on 2379/2380
whatever that option says (it only tells Milvus where to connect), so two servers on one machine
(two test sessions, a developer's own) collide. The launcher gives etcd a config file with
loopback ports of its own; the package picks Milvus's other ports free by itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 180.0

_LAUNCHER = r'''
import sys
from pathlib import Path
import milvus

data, proxy, client, peer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
etcd = Path(data) / "etcd.yaml"
Path(data).mkdir(parents=True, exist_ok=True)
etcd.write_text(
    f"name: default\ndata-dir: {data}/etcd-embed\n"
    f"listen-client-urls: http://127.0.0.1:{client}\nadvertise-client-urls: http://127.0.0.1:{client}\n"
    f"listen-peer-urls: http://127.0.0.1:{peer}\ninitial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
    f"initial-cluster: default=http://127.0.0.1:{peer}\n")
server = milvus.MilvusServer(wait_for_started=False)
config = server.config
marker = "  use:\n    embed: true"
assert marker in config.template_text, "milvus package template changed"
config.template_text = config.template_text.replace(marker, f"{marker}\n  config:\n    path: {etcd}", 1)
server.set_base_dir(data)
config.set("proxy_port", proxy)
config.set("etcd_port", client)
server.start()
server.wait()
'''


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
    if importlib.util.find_spec("milvus") is None:
        import pytest

        pytest.skip("the Milvus server package is not installed: pip install 'milvus==2.3.5'")
    data = Path(tempfile.mkdtemp(prefix="localmem-milvus-"))
    proxy, client, peer = _free_ports(3)
    log = (data / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(data), str(proxy), str(client), str(peer)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(proxy, process, data)
        yield f"http://127.0.0.1:{proxy}"
    finally:
        # The launcher runs the real binary as a child: stop the whole group it leads.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a milvus child that outlived its launcher
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _wait(port: int, process: subprocess.Popen[bytes], data: Path) -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (data / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Milvus server exited {process.returncode}: {tail}")
        try:
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=5)
            client.list_collections()
            client.close()
            return
        except Exception:
            time.sleep(1)
    raise RuntimeError(f"the Milvus server did not answer on port {port} within {START_TIMEOUT_S}s")
