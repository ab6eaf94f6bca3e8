"""Another account on the same machine can neither read a store's files nor reach it through anything
the process listens on (issue #37): files 0600, folders 0700, Milvus Lite's engine on a private Unix socket."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from localmem.embedders.fake import HashingEmbedder
from localmem.private import open_private, private_file, private_folder
from localmem.vector_stores import lite
from tests.serving import cli_env, serving

from .conftest import MemoryFactory

NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        private_folder(tmp_path / "a" / "store.db")
        private_file(tmp_path / "b" / "history.sqlite")
        with open_private(tmp_path / "export.jsonl") as fh:
            fh.write("{}\n")
        (tmp_path / "old.jsonl").write_text("x")
        os.chmod(tmp_path / "old.jsonl", 0o644)
        with open_private(tmp_path / "old.jsonl") as fh:  # an earlier file of that name is tightened too
            fh.write("{}\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a" / "store.db") == 0o700
    assert _mode(tmp_path / "b" / "history.sqlite") == 0o600
    assert _mode(tmp_path / "export.jsonl") == 0o600 and _mode(tmp_path / "old.jsonl") == 0o600


def test_a_store_and_its_history_are_created_private(make_memory: MemoryFactory, tmp_path: Path) -> None:
    memory = make_memory(HashingEmbedder(), name="m.db")
    memory.add("my bank pin is 4321", user_id="alice", infer=False)
    assert _mode(tmp_path / "m.db") == 0o700
    history = sorted(tmp_path.glob("m.db.*.history.sqlite*"))
    assert history and all(_mode(p) == 0o600 for p in history), [(p.name, oct(_mode(p))) for p in history]


def _listening(pid: int) -> tuple[set[int], set[str]]:
    """The TCP ports (IPv4 and IPv6) and Unix socket paths that process ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    paths = set()
    for row in Path("/proc/net/unix").read_text().splitlines()[1:]:
        cols = row.split()
        if len(cols) >= 8 and cols[6] in inodes and int(cols[3], 16) & 0x10000:  # __SO_ACCEPTCON: listening
            paths.add(cols[7])
    return ports, paths


def test_the_process_listens_on_no_tcp_port_for_its_store(make_memory: MemoryFactory) -> None:
    # Ports opened before (earlier tests' loopback servers in this pytest process) are not the store's.
    before, _ = _listening(os.getpid())
    memory = make_memory(HashingEmbedder(), name="m.db")
    memory.add("hello", user_id="alice", infer=False)
    ports, paths = _listening(os.getpid())
    folder = Path(memory.config.vector_store.uri).resolve()
    uri = lite.engine_uri(folder)
    assert uri is not None and uri.removeprefix("unix:") in paths
    assert not ports - before, f"a Lite store opened a TCP port: {ports - before}"
    assert _mode(Path(uri.removeprefix("unix:")).parent) == 0o700
    memory.close()
    assert lite.engine_uri(folder) is None and not Path(uri.removeprefix("unix:")).parent.exists()


# Run as root, then drops to uid 65534 before the first connection: every import happens first,
# because the interpreter's own files are not readable by that account afterwards.
PROBE = textwrap.dedent('''
    import http.client, json, os, socket, sys
    import grpc
    from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

    api, ports, paths, secret = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    # gRPC imports its channel code on first use: use it once, on nothing, while the files are readable.
    warm = grpc.insecure_channel("unix:/nonexistent")
    try:
        milvus_pb2_grpc.MilvusServiceStub(warm).ShowCollections(milvus_pb2.ShowCollectionsRequest(), timeout=1)
    except grpc.RpcError:
        pass
    warm.close()
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    found = {}

    def milvus(target):
        channel = grpc.insecure_channel(target)
        try:
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)
            names = list(stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(), timeout=10).collection_names)
            read = []
            for name in names:
                answer = stub.Query(milvus_pb2.QueryRequest(collection_name=name, expr='id != ""',
                                                            output_fields=["memory"]), timeout=10)
                read.append(secret.encode() in answer.SerializeToString())
            return f"listed {names}, read secret: {any(read)}"
        except grpc.RpcError as exc:
            return f"refused: {exc.code().name}"
        finally:
            channel.close()

    for port in ports:
        if port == api:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/memories?user_id=alice")
            answer = connection.getresponse()
            text = answer.read().decode(errors="replace")
            found[f"tcp:{port}"] = f"http {answer.status}" + (" read secret" if secret in text else "")
        else:
            found[f"tcp:{port}"] = milvus(f"127.0.0.1:{port}")
    for path in paths:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(path)
            found[f"unix:{path}"] = "connected; " + milvus(f"unix:{path}")
        except OSError as exc:
            found[f"unix:{path}"] = f"refused: {exc.strerror}"
        finally:
            sock.close()
    print(json.dumps(found))
''')


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                    reason="needs /proc and root (to drop to another account)")
def test_another_account_reaches_no_memory_through_any_port_of_serve(tmp_path: Path) -> None:
    key = "k3y-" + "s" * 30
    secret = "alice's bank pin is 4321"
    os.chmod(tmp_path, 0o755)  # the test's own folder must not be what keeps the other account out
    with serving(tmp_path / "m.db", env=cli_env(LOCALMEM_API_KEY=key)) as served:
        added = httpx.post(served.url + "/memories", headers={"X-API-Key": key}, timeout=60,
                           json={"messages": secret, "user_id": "alice", "infer": False})
        assert added.is_success, added.text
        api = int(served.url.rsplit(":", 1)[1])
        ports, paths = _listening(served.process.pid)
        assert api in ports
        result = subprocess.run([sys.executable, "-c", PROBE, str(api), json.dumps(sorted(ports)),
                                 json.dumps(sorted(paths)), secret],
                                capture_output=True, text=True, timeout=120, env=cli_env())
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
    assert found[f"tcp:{api}"] == "http 401"
    leaks = {where: what for where, what in found.items() if where != f"tcp:{api}" and not what.startswith("refused")}
    assert not leaks, f"another account reached the store: {leaks}"
    assert ports == {api}, f"serve listens on TCP ports besides its API: {found}"
