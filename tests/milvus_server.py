"""Start and stop a real Milvus server for the test session (the PyPI package ``milvus``).

``milvus`` 2.3.5 ships a standalone Milvus binary and a ``milvus-server`` launcher. We run
the launcher's ``main()`` in a child process (its own process group, so the binary it
starts goes down with it), on loopback, with its data in a temp folder and the client
port chosen free by us; its other ports (etcd, coordinators) the launcher picks free itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 240  # ~40 s on an idle machine; much more on 2 shared cores
_LAUNCH = "import milvus, sys; sys.argv[0] = 'milvus-server'; milvus.main()"


@dataclass
class MilvusServer:
    uri: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM the launcher's process group (launcher and binary), SIGKILL what is left after 20 s."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("milvus") is not None


def start(data_dir: Path) -> MilvusServer:
    """Start a server with its data in ``data_dir``; return once it answers a client, or raise."""
    port = _free_port()
    log = data_dir / "launcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "--data", str(data_dir), "--proxy-port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = MilvusServer(uri=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_ready(server, port)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: MilvusServer, port: int) -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"milvus-server exited with {server.process.returncode}; see {server.log}")
        if _port_open(port):
            try:
                client = MilvusClient(uri=server.uri, timeout=10)
                try:
                    client.list_collections()
                    return
                finally:
                    client.close()
            except Exception as exc:  # not ready yet: any client error means "try again"
                last = exc
        time.sleep(1)
    raise TimeoutError(f"milvus-server did not answer on {server.uri} within {START_TIMEOUT_S} s "
                       f"(last error: {last}); see {server.log}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group this helper created with start_new_session
