"""The memory as MCP tools, with the official ``mcp`` SDK.

The same tool set is served over stdio (``localmem mcp``, for an assistant that starts
the process itself) and over streamable HTTP at /mcp on ``localmem serve``. Tools are thin:
each calls one AsyncMemory method and returns Memory's own result shape. Errors reach the
assistant as the LocalmemError's one-line message.
"""

from __future__ import annotations

from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.transport_security import TransportSecuritySettings

from localmem.async_memory import AsyncMemory
from localmem.server import MAX_WAIT_S

INSTRUCTIONS = (
    "Long-term memory for the user, stored locally. Search it before answering questions about the user's "
    "preferences, history or plans; add durable facts the user states. Use the same user_id every time."
)


def build_mcp(memory: AsyncMemory, *, loopback: bool = True) -> FastMCP:
    # Off loopback, the server's API key guards the endpoint; DNS-rebinding protection (a browser
    # trick against localhost services) would otherwise refuse every non-localhost Host header.
    security = None if loopback else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server = FastMCP("localmem", instructions=INSTRUCTIONS, stateless_http=True, json_response=True,
                     transport_security=security, log_level="WARNING")

    @server.tool()
    async def add_memory(text: str, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None, metadata: dict[str, Any] | None = None,
                         infer: bool = True) -> dict[str, Any]:
        """Remember what a message says. infer=true extracts short facts with the local model; false stores it as is."""
        return await memory.add(text, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=metadata,
                                infer=infer)

    @server.tool()
    async def search_memories(query: str, user_id: str | None = None, agent_id: str | None = None,
                              run_id: str | None = None, limit: int = 5) -> dict[str, Any]:
        """Memories most similar to the query (score: higher is better)."""
        return await memory.search(query, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)

    @server.tool()
    async def list_memories(user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                            limit: int = 100) -> dict[str, Any]:
        """Every memory of a user, agent or run, oldest first."""
        return await memory.get_all(user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)

    @server.tool()
    async def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory by id."""
        return await memory.get(memory_id)

    @server.tool()
    async def update_memory(memory_id: str, text: str) -> dict[str, str]:
        """Replace a memory's text."""
        return await memory.update(memory_id, text)

    @server.tool()
    async def delete_memory(memory_id: str) -> dict[str, str]:
        """Delete one memory (its history is kept)."""
        return await memory.delete(memory_id)

    @server.tool()
    async def memory_history(memory_id: str) -> list[dict[str, Any]]:
        """How a memory changed, oldest first."""
        return await memory.history(memory_id)

    @server.tool()
    async def wait_for_extraction(timeout: float = 30.0) -> dict[str, Any]:
        """With background extraction on: wait up to timeout seconds (at most a minute) for the facts of
        earlier add_memory calls. done=true once they are written; queued: calls still waiting."""
        return (await memory.extraction_progress(min(timeout, MAX_WAIT_S))).to_dict()

    return server


def run_stdio(memory: AsyncMemory) -> None:
    """Serve the tools on stdin/stdout until the client closes them; then release the memory."""
    try:
        build_mcp(memory).run("stdio")
    finally:
        memory.close_sync()
