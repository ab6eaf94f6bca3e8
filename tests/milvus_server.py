"""Start and stop a real Milvus standalone server (PyPI ``milvus`` 2.3.5) for the test session.

The package ships a standalone Milvus binary and its launcher. We run the launcher in a child
process (its own process group, so the binary it starts goes down with it), on loopback, with
its data in a temp folder. ~40 s to start on an idle machine; much more on 2 shared cores.

Why our own launcher script instead of ``milvus-server --etcd-port``: the embedded etcd listens on
2379/2380 whatever that option says (it only tells Milvus where to connect), so two servers on one
machine (two test sessions, a developer's own) collide. The script gives etcd a config file with
loopback ports of its own. Milvus's other ports are fixed (9091, 19529, ...): two servers collide on
them unless each runs in a network namespace of its own, as below.

Loopback only: the Milvus 2.3.5 binary listens on all interfaces (proxy, metrics on 9091, every
component's gRPC port), whatever its config says. Where user and network namespaces are
available (``unshare -Urn``), the server runs in a network namespace of its own, with only a
loopback interface, so nothing outside this machine's tests can reach it; the tests reach its
proxy through a listening socket this process opens on 127.0.0.1 and hands to the launcher, which
keeps its namespace (sockets belong to the namespace they were made in) and relays each
connection to the proxy inside. Elsewhere the server runs as before, on the host's interfaces.
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
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 240  # ~40 s on an idle machine; much more on 2 shared cores

_LAUNCHER = r'''
import sys
from pathlib import Path
import milvus

data, proxy, client, peer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
relay_fd = int(sys.argv[5]) if len(sys.argv) > 5 else None
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
if relay_fd is not None:
    import socket, threading

    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def relay():
        listener = socket.socket(fileno=relay_fd)  # made outside this namespace, on the host's 127.0.0.1
        while True:
            outside, _ = listener.accept()
            try:
                inside = socket.create_connection(("127.0.0.1", proxy))
            except OSError:  # not up yet: the client retries
                outside.close()
                continue
            for end in (outside, inside):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=pump, args=(outside, inside), daemon=True).start()
            threading.Thread(target=pump, args=(inside, outside), daemon=True).start()

    threading.Thread(target=relay, daemon=True).start()
server.start()
server.wait()
'''


@dataclass
class MilvusServer:
    uri: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM the launcher's process group (launcher and binary), SIGKILL what is left after 60 s."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        _signal_group(self.process.pid, signal.SIGKILL)  # also a milvus child that outlived its launcher
        self.process.wait(timeout=10)


def installed() -> bool:
    return importlib.util.find_spec("milvus") is not None


def start(data_dir: Path) -> MilvusServer:
    """Start a server with its data in ``data_dir``; return once it answers a client, or raise."""
    proxy, client, peer = _free_ports(3)
    log = data_dir / "launcher.log"
    command = [sys.executable, "-c", _LAUNCHER, str(data_dir), str(proxy), str(client), str(peer)]
    listener = _relay_listener() if _private_network() else None
    fds: tuple[int, ...] = ()
    if listener is not None:  # the tests connect to the relay; the proxy's port is inside the namespace
        command = [*_IN_OWN_NETWORK, *command, str(listener.fileno())]
        fds = (listener.fileno(),)
        proxy = int(listener.getsockname()[1])
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, pass_fds=fds)
    finally:
        if listener is not None:
            listener.close()  # the launcher holds its own copy
    server = MilvusServer(uri=f"http://127.0.0.1:{proxy}", process=process, log=log)
    try:
        _wait_until_ready(server, proxy)
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
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"milvus-server exited with {server.process.returncode}; see {server.log}: {tail}")
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


# A user and network namespace with its loopback up; "$0" "$@" is the launcher's command line.
_IN_OWN_NETWORK = ["unshare", "-Urn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def _private_network() -> bool:
    """Whether this machine lets an unprivileged process make its own network namespace."""
    if sys.platform != "linux" or not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run([*_IN_OWN_NETWORK, "true"], capture_output=True)
    return probe.returncode == 0


def _relay_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.set_inheritable(True)
    return listener


def _free_ports(n: int) -> list[int]:
    # All bound at once, so the n ports are distinct.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group this helper created with start_new_session
