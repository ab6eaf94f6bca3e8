"""What an assistant or a browser meets: MCP tools through a real in-process MCP client session,
`localmem mcp --print-config`, and the /docs page served with no external URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localmem.async_memory import AsyncMemory
from localmem.cli import main
from localmem.embedders.fake import HashingEmbedder

from .conftest import MemoryFactory, plain

pytest.importorskip("mcp", reason="the [server] extra is not installed")


@pytest.fixture
def async_memory(make_memory: MemoryFactory) -> Iterator[AsyncMemory]:
    memory = AsyncMemory(memory=make_memory(HashingEmbedder()))
    yield memory
    memory.close_sync()


def _tools(async_memory: AsyncMemory, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
    import anyio
    from mcp.shared.memory import create_connected_server_and_client_session

    from localmem.server.mcp import build_mcp

    answers: list[Any] = []
    listed: Any = None

    async def scenario() -> None:
        nonlocal listed
        async with create_connected_server_and_client_session(build_mcp(async_memory)) as session:
            listed = await session.list_tools()
            for name, arguments in calls:
                answers.append(await session.call_tool(name, arguments))

    anyio.run(scenario)
    return listed, answers


def test_add_memory_takes_mem0_messages_or_text(async_memory: AsyncMemory) -> None:
    messages = [{"role": "user", "content": "I am allergic to peanuts"},
                {"role": "assistant", "content": "Noted, no peanuts."}]
    _, answers = _tools(async_memory, [
        ("add_memory", {"messages": messages, "user_id": "gil", "infer": False}),
        ("add_memory", {"messages": "I live in Lyon", "user_id": "gil", "infer": False}),
        ("add_memory", {"text": "I play the cello", "user_id": "gil", "infer": False}),
        ("add_memory", {"user_id": "gil"}),
        ("add_memory", {"text": "x", "messages": "y", "user_id": "gil"}),
        ("list_memories", {"user_id": "gil"}),
    ])
    by_list, by_string, by_text, neither, both, listed = answers
    assert not by_list.isError, by_list.content
    # A list is messages, each kept as said (a string would have been one memory).
    assert [plain(r["memory"]) for r in by_list.structuredContent["results"]] == [
        "I am allergic to peanuts", "Noted, no peanuts."]
    assert not by_string.isError and not by_text.isError
    for refused in (neither, both):
        assert refused.isError and "add_memory needs messages" in refused.content[0].text
    stored = [r["memory"] for r in listed.structuredContent["results"]]
    assert all(any(word in m for m in stored) for word in ("cello", "Lyon", "peanuts"))
    assert not any("Noted" in m for m in stored)  # the assistant's reply is kept, but not listed as gil's memory


def test_every_tool_argument_is_described(async_memory: AsyncMemory) -> None:
    listed, _ = _tools(async_memory, [])
    undescribed = [f"{tool.name}.{name}" for tool in listed.tools
                   for name, schema in tool.inputSchema["properties"].items() if not schema.get("description")]
    assert undescribed == []
    add = next(t for t in listed.tools if t.name == "add_memory")
    assert {"messages", "text", "user_id", "metadata", "infer"} <= set(add.inputSchema["properties"])
    assert "required" not in add.inputSchema or "text" not in add.inputSchema["required"]


def test_print_config_names_absolute_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["mcp", "--print-config", "--db", "rel.db"]) == 0
    config = json.loads(capsys.readouterr().out)
    server = config["mcpServers"]["localmem"]
    assert Path(server["command"]).is_absolute() and Path(server["command"]).is_file()
    db = server["args"][server["args"].index("--db") + 1]
    assert db == str(tmp_path / "rel.db")  # the tests run in tmp_path; a GUI's working directory is not ours
    assert not (tmp_path / "rel.db").exists()  # printing opens no store
    assert "LOCALMEM_API_KEY" not in json.dumps(config)


def test_docs_page_and_its_assets_are_served_locally(async_memory: AsyncMemory) -> None:
    from fastapi.testclient import TestClient

    from localmem.server.app import create_app

    client = TestClient(create_app(async_memory))
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert re.findall(r"https?://", page.text) == []  # no CDN, no validator, no external favicon
    from fastapi.openapi.docs import get_swagger_ui_html

    # The same check finds FastAPI's own page's CDN links: it can fail.
    assert re.findall(r"https?://", bytes(get_swagger_ui_html(openapi_url="/o", title="t").body).decode())
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: ?'([^']+)'", page.text)
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/openapi.json"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        response = client.get(asset)
        assert response.status_code == 200 and response.content, asset
    assert client.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))
