"""``localmem serve`` as a real subprocess on 127.0.0.1, driven by MemoryClient and raw HTTP."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localmem import InvalidInputError, Memory, MemoryClient, MemoryConfig, MemoryNotFoundError
from localmem.config import VectorStoreConfig
from localmem.errors import ServerUnavailableError
from tests.serving import Served, cli_env, free_port, launch, serving, stop, wait_ready

from .conftest import plain

pytestmark = pytest.mark.slow
MEMORY_KEYS = {"id", "memory", "hash", "metadata", "created_at", "updated_at", "user_id"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve") / "m.db", args=["--max-body-bytes", "20000"]) as served:
        yield served


@pytest.fixture
def client(server: Served) -> Iterator[MemoryClient]:
    with MemoryClient(server.url) as c:
        yield c


def test_client_has_memory_methods_and_shapes(client: MemoryClient) -> None:
    added = client.add("I play tennis on Sundays", user_id="alice", metadata={"topic": "sport"}, infer=False)
    assert added["relations"] == [] and [r["event"] for r in added["results"]] == ["ADD"]
    memory_id = added["results"][0]["id"]
    got = client.get(memory_id)
    assert got.keys() >= MEMORY_KEYS and plain(got["memory"]) == "I play tennis on Sundays"
    assert got["metadata"] == {"topic": "sport"}
    hits = client.search("which sport?", user_id="alice", limit=3)["results"]
    assert hits[0]["id"] == memory_id and {"score", "distance"} <= hits[0].keys()
    assert [m["id"] for m in client.get_all(user_id="alice", filters={"topic": "sport"})["results"]] == [memory_id]
    assert client.get_all(user_id="alice", filters={"topic": "food"})["results"] == []
    assert client.update(memory_id, "I play squash on Sundays") == {"message": "Memory updated successfully!"}
    assert client.get(memory_id)["memory"] == "I play squash on Sundays"
    assert client.delete(memory_id) == {"message": "Memory deleted successfully!"}
    events = [e["event"] for e in client.history(memory_id)]
    assert events == ["ADD", "UPDATE", "DELETE"]
    with pytest.raises(MemoryNotFoundError) as caught:
        client.get(memory_id)
    assert caught.value.memory_id == memory_id


def test_add_with_inference_through_the_server(client: MemoryClient) -> None:
    # The one test that runs the real LLM in the server: the contract, not the model's exact words.
    added = client.add([{"role": "user", "content": "My name is Hana. I love hiking in the Alps."}], user_id="hana")
    assert added["results"] and {r["event"] for r in added["results"]} <= {"ADD", "UPDATE", "DELETE", "NONE"}
    stored = {m["id"]: m["memory"] for m in client.get_all(user_id="hana")["results"]}
    for change in added["results"]:
        if change["event"] in ("ADD", "UPDATE"):
            assert stored[change["id"]] == change["memory"] and change["memory"].strip()
            assert client.history(change["id"])[-1]["new_memory"] == change["memory"]


def test_background_extraction_through_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Slices of 0.3 s: the client's wait spans many requests, each covering the jobs of the first.
    monkeypatch.setattr("localmem.client.WAIT_SLICE_S", 0.3)
    with serving(tmp_path / "bg.db", args=["--background-extraction"]) as served, MemoryClient(served.url) as client:
        added = client.add([{"role": "user", "content": "My name is Hana. I love hiking in the Alps."}],
                           user_id="hana")
        (episode,) = added["results"]
        assert episode["kind"] == "episode" and episode["flags"] == ["extraction_queued"]
        assert client.wait_for_extraction(300) is True
        assert client.extraction_progress().queued == 0
        for memory in client.get_all(user_id="hana", include_episodes=True)["results"]:
            if memory["kind"] == "fact":  # what the model drew is linked to the message
                assert [s["id"] for s in memory["sources"]] == [episode["id"]]


def test_delete_all_and_reset(client: MemoryClient) -> None:
    for text in ("likes tea", "likes jazz"):
        client.add(text, user_id="bob", infer=False)
    client.add("likes chess", user_id="carol", infer=False)
    assert client.delete_all(user_id="bob") == {"message": "Memories deleted successfully!"}
    assert client.get_all(user_id="bob")["results"] == []
    assert len(client.get_all(user_id="carol")["results"]) == 1
    client.reset()
    assert client.get_all(user_id="carol")["results"] == []


def test_bad_requests_get_one_line_json_reasons(server: Served, client: MemoryClient) -> None:
    with pytest.raises(InvalidInputError, match="user_id, agent_id or run_id"):
        client.add("no scope", infer=False)
    response = httpx.get(server.url + "/memories", params={"user_id": "a", "filters": "{nope"})
    assert response.status_code == 400 and response.json()["detail"].startswith("filters is not JSON")
    cases = [
        ("POST", "/search", {"json": {"query": 3, "user_id": "a"}}, 422),
        ("POST", "/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("POST", "/memories", {"json": {"messages": "x"}}, 400),
        ("GET", "/memories/not-a-real-id", {}, 404),
        ("PUT", "/memories/x", {"json": {}}, 422),
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/memories", {}, 400),
    ]
    for method, path, kwargs, status in cases:
        response = httpx.request(method, server.url + path, **kwargs)  # type: ignore[arg-type]
        body = response.json()
        assert response.status_code == status, (method, path, body)
        assert set(body) >= {"error", "detail"} and "\n" not in body["detail"] and "Traceback" not in response.text


def test_json_nested_too_deeply_is_a_400_not_a_500(server: Served) -> None:
    deep = "[" * 1000 + "]" * 1000
    response = httpx.get(server.url + "/memories", params={"user_id": "a", "filters": deep})
    assert response.status_code == 400 and response.json()["error"] == "InvalidInputError", response.text
    body = '{"query": "x", "user_id": "a", "filters": ' + "[" * 5000 + "]" * 5000 + "}"
    response = httpx.post(server.url + "/search", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422) and "Traceback" not in response.text, response.text
    assert httpx.get(server.url + "/health").status_code == 200
    assert "RecursionError" not in server.output()


def test_serve_binds_an_ipv6_address_written_in_brackets(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    port = free_port()
    served = launch(tmp_path / "m.db", port=port, args=["--host", "[::1]"], wait=False)
    served.url = f"http://[::1]:{port}"
    try:
        wait_ready(served)
        assert httpx.get(served.url + "/memories", params={"user_id": "a"}).json() == {"results": []}
    finally:
        stop(served)


@pytest.mark.parametrize("host", ["nowhere.invalid", "[::1"])
def test_serve_on_an_address_it_cannot_use_exits_with_the_config_code(tmp_path: Path, host: str) -> None:
    result = subprocess.run([sys.executable, "-m", "localmem", "serve", "--db", str(tmp_path / "m.db"),
                             "--host", host, "--port", str(free_port())],
                            capture_output=True, text=True, env=cli_env(LOCALMEM_API_KEY="k" * 32), timeout=120)
    assert result.returncode == 7, result.stderr
    assert "--host" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_serve_on_a_port_in_use_says_so_and_exits_with_the_config_code(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "localmem", "serve", "--db", str(tmp_path / "m.db"),
                                 "--port", str(port)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 7, result.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in result.stderr, result.stderr


def test_oversize_bodies_are_refused_with_413(server: Served) -> None:
    big = json.dumps({"query": "x" * 50_000, "user_id": "a"}).encode()
    response = httpx.post(server.url + "/search", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield b'{"query": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'", "user_id": "a"}'

    response = httpx.post(server.url + "/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert httpx.get(server.url + "/health").status_code == 200  # still serving


def test_openapi_docs_are_served(server: Served) -> None:
    assert httpx.get(server.url + "/docs").status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/memories", "/memories/{memory_id}", "/memories/{memory_id}/history", "/search", "/reset"} <= set(paths)


def test_non_loopback_bind_needs_an_api_key(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "localmem", "serve", "--db", str(tmp_path / "m.db"),
                             "--host", "0.0.0.0", "--port", str(free_port())],
                            capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.returncode == 7, result.stderr
    assert "LOCALMEM_API_KEY" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_api_key_is_required_compared_and_never_logged(tmp_path: Path) -> None:
    key = "k3y-" + "s" * 30
    with serving(tmp_path / "m.db", env=cli_env(LOCALMEM_API_KEY=key)) as served:
        assert httpx.get(served.url + "/health").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = httpx.get(served.url + "/memories", params={"user_id": "a"}, headers=headers)
            assert response.status_code == 401 and key not in response.text
        assert httpx.get(served.url + "/memories", params={"user_id": "a"}, headers={"X-API-Key": key}).is_success
        ok = httpx.get(served.url + "/memories", params={"user_id": "a"}, headers={"Authorization": f"Bearer {key}"})
        assert ok.is_success
        with MemoryClient(served.url, api_key=key) as good:
            assert good.get_all(user_id="a") == {"results": []}
        with MemoryClient(served.url, api_key="wrong") as bad, pytest.raises(ServerUnavailableError, match="API key"):
            bad.get_all(user_id="a")
    assert key not in served.output()


def test_sigterm_closes_the_store_for_the_next_process(tmp_path: Path, real_embedder) -> None:
    db = tmp_path / "m.db"
    with serving(db) as served, MemoryClient(served.url) as client:
        memory_id = client.add("persisted across restarts", user_id="eve", infer=False)["results"][0]["id"]
    # uvicorn shuts down gracefully, then re-raises SIGTERM so a supervisor sees why the process ended.
    assert served.process.returncode in (0, -signal.SIGTERM), served.output()
    assert "store released" in served.output() and "Traceback" not in served.output()
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(db)))
    with Memory(config, embedder=real_embedder) as memory:  # would raise StoreLockedError if still held
        assert plain(memory.get(memory_id)["memory"]) == "persisted across restarts"
        assert [e["event"] for e in memory.history(memory_id)] == ["ADD"]


def test_kill_9_during_writes_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    served = launch(db)
    acknowledged: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    stop_writing = threading.Event()

    def write_stream() -> None:
        with MemoryClient(served.url, timeout=10) as client:
            for i in range(10_000):
                if stop_writing.is_set():
                    return
                text = f"fact number {i}"
                try:
                    result = client.add(text, user_id="zed", infer=False)
                except ServerUnavailableError as exc:  # the kill: no answer, no promise
                    failures.append(exc)
                    return
                acknowledged.append((result["results"][0]["id"], text))

    writer = threading.Thread(target=write_stream)
    writer.start()
    while len(acknowledged) < 30 and writer.is_alive():
        threading.Event().wait(0.05)
    served.process.send_signal(signal.SIGKILL)
    served.process.wait()
    stop_writing.set()
    writer.join(30)
    assert len(acknowledged) >= 30 and failures, "the kill did not interrupt the stream"
    with serving(db) as restarted, MemoryClient(restarted.url) as client:
        stored = {m["id"]: plain(m["memory"]) for m in client.get_all(user_id="zed", limit=10_000)["results"]}
        for memory_id, text in acknowledged:
            assert stored.get(memory_id) == text
            assert [e["event"] for e in client.history(memory_id)] == ["ADD"]
        assert len(set(stored.values())) == len(stored)  # nothing doubled by the restart
    assert stop(restarted) in (0, -signal.SIGTERM)


def test_cli_uses_the_server_without_loading_models(server: Served, client: MemoryClient) -> None:
    memory_id = client.add("my bike is red", user_id="finn", infer=False)["results"][0]["id"]
    probe = ("import json, sys\nfrom localmem.cli import main\ncode = main(sys.argv[1:])\n"
             "heavy = ('torch', 'pymilvus', 'sentence_transformers', 'llama_cpp')\n"
             "print(json.dumps({'code': code, 'heavy': sorted(m for m in heavy if m in sys.modules)}))")
    result = subprocess.run([sys.executable, "-c", probe, "search", "bike colour", "--user", "finn", "--json"],
                            capture_output=True, text=True, env=cli_env(LOCALMEM_SERVER=server.url), timeout=60)
    out, status = result.stdout.rsplit("\n", 2)[0], json.loads(result.stdout.strip().splitlines()[-1])
    assert status == {"code": 0, "heavy": []}, result.stderr
    assert json.loads(out[: out.rindex("}") + 1])["results"][0]["id"] == memory_id
    missing = subprocess.run([sys.executable, "-m", "localmem", "get", "no-such-id", "--server", server.url],
                             capture_output=True, text=True, env=cli_env(), timeout=60)
    assert missing.returncode == 3 and "no memory with id" in missing.stderr
    export = subprocess.run([sys.executable, "-m", "localmem", "export", "out.jsonl", "--server", server.url],
                            capture_output=True, text=True, env=cli_env(), timeout=60)
    assert export.returncode == 4 and "--server" in export.stderr


def test_cli_reports_an_unreachable_server_in_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "localmem", "list", "--user", "a"], capture_output=True,
                            text=True, env=cli_env(LOCALMEM_SERVER=f"http://127.0.0.1:{free_port()}"), timeout=60)
    assert result.returncode == 5 and "localmem serve" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def _use_mcp_tools(session) -> None:
    await session.initialize()
    names = {tool.name for tool in (await session.list_tools()).tools}
    assert names == {"add_memory", "search_memories", "list_memories", "get_memory", "update_memory",
                     "delete_memory", "memory_history", "wait_for_extraction"}
    waited = await session.call_tool("wait_for_extraction", {"timeout": 0})
    assert not waited.isError and waited.structuredContent == {"done": True, "failed": False, "through": 0,
                                                               "queued": 0}
    refused = await session.call_tool("wait_for_extraction", {"timeout": -1})
    assert refused.isError and "timeout" in refused.content[0].text
    added = await session.call_tool("add_memory", {"text": "I am allergic to peanuts", "user_id": "gil",
                                                   "infer": False})
    assert not added.isError, added.content
    memory_id = added.structuredContent["results"][0]["id"]
    found = await session.call_tool("search_memories", {"query": "food allergy", "user_id": "gil"})
    assert found.structuredContent["results"][0]["id"] == memory_id
    await session.call_tool("update_memory", {"memory_id": memory_id, "text": "I am allergic to walnuts"})
    got = await session.call_tool("get_memory", {"memory_id": memory_id})
    assert got.structuredContent["memory"] == "I am allergic to walnuts"
    listed = await session.call_tool("list_memories", {"user_id": "gil"})
    assert [m["id"] for m in listed.structuredContent["results"]] == [memory_id]
    await session.call_tool("delete_memory", {"memory_id": memory_id})
    history = await session.call_tool("memory_history", {"memory_id": memory_id})
    assert [e["event"] for e in history.structuredContent["result"]] == ["ADD", "UPDATE", "DELETE"]
    missing = await session.call_tool("get_memory", {"memory_id": memory_id})
    assert missing.isError and "no memory with id" in missing.content[0].text


def test_mcp_over_streamable_http_on_serve(server: Served) -> None:
    import anyio
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def scenario() -> None:
        async with streamable_http_client(server.url + "/mcp") as (read, write, _), ClientSession(read, write) as s:
            await _use_mcp_tools(s)

    anyio.run(scenario)


@pytest.mark.parametrize("direct", [False, True], ids=["via-server", "own-store"])
def test_mcp_over_stdio(server: Served, tmp_path: Path, direct: bool) -> None:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    where = ["--db", str(tmp_path / "m.db")] if direct else ["--server", server.url]
    params = StdioServerParameters(command=sys.executable, args=["-m", "localmem", "mcp", *where], env=cli_env(),
                                   cwd=str(tmp_path))

    async def scenario() -> None:
        with (tmp_path / "mcp.err").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
                await _use_mcp_tools(s)

    anyio.run(scenario)


SERVE_ON_A_FULL_DISK = """
import json, os, signal, subprocess, sys, time
from pathlib import Path
import httpx

where, port = Path(sys.argv[1]), sys.argv[2]
small = where / "small"
small.mkdir()
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
(small / "ballast").write_bytes(b"x" * 600_000)
url = f"http://127.0.0.1:{port}"


def start():
    log = open(where / "serve.log", "ab")
    serve = subprocess.Popen([sys.executable, "-m", "localmem", "serve", "--db", str(small / "mem.db"),
                              "--port", port, "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(3000):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return serve
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("serve did not start")


def listed():
    answer = httpx.get(url + "/memories", params={"user_id": "u", "limit": 16384}, timeout=120)
    return answer.status_code, answer.json()


serve = start()
acknowledged, errors = [], []
while len(errors) < 3 and len(acknowledged) < 5000:  # a few refusals in a row: the disk is full
    answer = httpx.post(url + "/memories", timeout=120, json={
        "messages": [{"role": "user", "content": f"memory {len(acknowledged)} " + "padding " * 300}],
        "user_id": "u", "infer": False})
    if answer.status_code == 200:
        acknowledged += [r["id"] for r in answer.json()["results"]]
        errors.clear()
    else:
        errors.append([answer.status_code, answer.text])
status, body = listed()
full_view = "complete" if status == 200 and set(acknowledged) <= {m["id"] for m in body["results"]} else [status, body]
(small / "ballast").unlink()  # the user frees space; the server lives on
status, body = listed()
freed_view = "complete" if status == 200 and set(acknowledged) <= {m["id"] for m in body["results"]} else [status, body]
serve.send_signal(signal.SIGTERM)
serve.wait(timeout=120)
serve = start()  # a restart on the same folder
status, body = listed()
after = {m["id"] for m in body["results"]} if status == 200 else set()
histories = [httpx.get(f"{url}/memories/{i}/history", timeout=60).json() for i in acknowledged[:20]]
serve.send_signal(signal.SIGTERM)
serve.wait(timeout=120)
print(json.dumps({"acknowledged": len(acknowledged), "errors": errors, "full_view": full_view,
                  "freed_view": freed_view, "missing_after_restart": len(set(acknowledged) - after),
                  "histories": [[e["event"] for e in h] for h in histories]}))
"""


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("unshare") is None, reason="needs unshare (Linux)")
def test_a_full_disk_under_serve_gives_a_clear_error_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """``serve`` on a Lite folder on a 4 MB tmpfs (a private user+mount namespace): adds until ENOSPC."""
    if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces are not available here")
    driver = subprocess.run(["unshare", "-Urm", sys.executable, "-c", SERVE_ON_A_FULL_DISK, str(tmp_path),
                             str(free_port())], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                            timeout=900)
    log = (tmp_path / "serve.log").read_text(errors="replace") if (tmp_path / "serve.log").exists() else ""
    assert driver.returncode == 0, driver.stderr[-3000:] + log[-3000:]
    report = json.loads(driver.stdout.strip().splitlines()[-1])
    assert report["acknowledged"] > 0 and report["errors"], report
    for status, text in report["errors"]:
        body = json.loads(text)  # one line of JSON naming the problem, never a traceback
        assert status in (500, 503, 507) and body["error"].endswith("Error"), report
        assert "No space left" in body["detail"] and "Traceback" not in text, report
    assert report["full_view"] == "complete" or report["full_view"][0] >= 500, report  # never a partial view
    assert report["freed_view"] == "complete", report
    assert report["missing_after_restart"] == 0, report
    assert all(events == ["ADD"] for events in report["histories"]), report
