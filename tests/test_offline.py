"""The offline guarantee: a full add(infer=True)/search/update/history/delete cycle with the default
models, in a process that cannot reach anything but loopback and records every attempt to.

Two walls: a fresh network namespace with only ``lo`` up (kernel level, catches C code too) where
the machine allows one, and a Python socket guard that turns any non-loopback connect or name
lookup into a recorded failure. The test fails on any recorded attempt; a deliberate attempt at
the end proves the guard is live.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GUARD = textwrap.dedent('''
    import ipaddress, json, socket, sys

    ATTEMPTS = []

    def _local(host):
        if host in (None, "", "localhost", b"localhost"):
            return True
        try:
            return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
        except ValueError:
            return False

    def _guard(method):
        def guarded(self, address, *args):
            if self.family != socket.AF_UNIX and not _local(address[0]):
                ATTEMPTS.append(f"connect {address!r}")
                raise OSError(f"network blocked by the offline test: {address!r}")
            return method(self, address, *args)
        return guarded

    socket.socket.connect = _guard(socket.socket.connect)
    socket.socket.connect_ex = _guard(socket.socket.connect_ex)
    _getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if not _local(host):
            ATTEMPTS.append(f"resolve {host!r}")
            raise socket.gaierror(f"name lookup blocked by the offline test: {host!r}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
''')

CYCLE = textwrap.dedent('''
    from localmem import Memory

    m = Memory()
    added = m.add("I am working on improving my tennis skills.", user_id="alice")
    memory_id = added["results"][0]["id"]
    # A raw-text fallback would be flagged here: its absence shows the LLM really extracted the fact.
    flags = m.get(memory_id).get("metadata", {}).get("localmem_flags", [])
    hits = m.search("What are Alice's hobbies", user_id="alice")["results"]
    m.update(memory_id, "Likes to play tennis on weekends")
    events = [e["event"] for e in m.history(memory_id)]
    m.delete(memory_id)
    left = m.get_all(user_id="alice")["results"]
    m.close()
    cycle_attempts = list(ATTEMPTS)
    try:
        socket.create_connection(("203.0.113.1", 80), timeout=2)
        self_test = "connected"
    except OSError:
        self_test = "blocked"
    print("RESULT " + json.dumps({"added": added, "hits": len(hits), "events": events, "left": len(left),
                                  "flags": flags, "cycle_attempts": cycle_attempts, "self_test": self_test,
                                  "all_attempts": ATTEMPTS}))
''')


def _network_namespace() -> list[str]:
    """A prefix that runs a command with only loopback, or [] where namespaces are not allowed."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] if probe.returncode == 0 else []


@pytest.mark.slow
def test_full_cycle_never_leaves_loopback(tmp_path: Path) -> None:
    script = tmp_path / "offline_cycle.py"
    script.write_text(GUARD + CYCLE)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    done = subprocess.run([*_network_namespace(), sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["cycle_attempts"] == [], result["cycle_attempts"]
    assert result["self_test"] == "blocked" and result["all_attempts"] == ["resolve '203.0.113.1'"]
    # How many facts the real model extracts differs between CPUs; that it extracted one or more does not.
    assert result["added"]["results"] and {r["event"] for r in result["added"]["results"]} == {"ADD"}
    assert result["hits"] >= 1
    assert result["events"] == ["ADD", "UPDATE"]
    assert result["left"] == 0
    assert result["flags"] == []


PROBE = textwrap.dedent('''
    import socket, threading

    outcomes = {}
    for name, attempt in [
        ("connect", lambda: socket.socket().connect(("203.0.113.1", 80))),
        ("connect_ex", lambda: socket.socket().connect_ex(("203.0.113.1", 80))),
        ("create_connection", lambda: socket.create_connection(("example.com", 80), timeout=2)),
        ("ipv6", lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 80, 0, 0))),
    ]:
        try:
            attempt()
            outcomes[name] = "connected"
        except OSError:
            outcomes[name] = "blocked"
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    socket.create_connection(server.getsockname(), timeout=5).close()
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall(b"x")
    outcomes["loopback"] = outcomes["unix"] = "ok" if b.recv(1) == b"x" else "broken"
    print("RESULT " + json.dumps({"outcomes": outcomes, "attempts": ATTEMPTS}))
''')


def test_the_guard_records_and_blocks_every_non_loopback_attempt(tmp_path: Path) -> None:
    """Without this, a guard that silently stopped working would let the cycle test pass."""
    script = tmp_path / "probe.py"
    script.write_text(GUARD + PROBE)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT ")).removeprefix("RESULT "))
    assert result["outcomes"] == {"connect": "blocked", "connect_ex": "blocked", "create_connection": "blocked",
                                  "ipv6": "blocked", "loopback": "ok", "unix": "ok"}
    assert result["attempts"] == ["connect ('203.0.113.1', 80)", "connect ('203.0.113.1', 80)",
                                  "resolve 'example.com'", "connect ('2001:db8::1', 80, 0, 0)"]


DOCS_PAGE = textwrap.dedent('''
    import re, socket, threading, time
    import httpx, uvicorn
    from localmem import Memory, MemoryConfig
    from localmem.async_memory import AsyncMemory
    from localmem.config import VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder
    from localmem.server.app import create_app

    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri="m.db")), embedder=HashingEmbedder())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(AsyncMemory(memory=memory)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    page = httpx.get(base + "/docs").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page) + re.findall(r"url: ?'([^']+)'", page)
    statuses = {a: httpx.get(base + a).status_code for a in assets}
    server.should_exit = True
    print("RESULT " + json.dumps({"external": re.findall(r"https?://[^\\s'\\"]+", page), "statuses": statuses,
                                  "attempts": ATTEMPTS}))
''')


@pytest.mark.slow
def test_the_docs_page_loads_with_no_network(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the [server] extra is not installed")
    script = tmp_path / "docs_page.py"
    script.write_text(GUARD + DOCS_PAGE)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([*_network_namespace(), sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT ")).removeprefix("RESULT "))
    assert result["external"] == [] and result["attempts"] == []
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/openapi.json"} <= set(
        result["statuses"])
    assert set(result["statuses"].values()) == {200}, result["statuses"]
