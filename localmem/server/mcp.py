"""The memory as MCP tools, with the official ``mcp`` SDK.

The same tool set is served over stdio (``localmem mcp``, for an assistant that starts
the process itself) and over streamable HTTP at /mcp on ``localmem serve``. Tools are thin:
each calls one AsyncMemory method and returns Memory's own result shape. Errors reach the
assistant as the LocalmemError's one-line message.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.fastmcp import FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field

from localmem.async_memory import AsyncMemory
from localmem.errors import InvalidInputError
from localmem.server import MAX_WAIT_S

INSTRUCTIONS = (
    "Long-term memory for the user, stored locally. Search it before answering questions about the user's "
    "preferences, history or plans; add durable facts the user states. Use the same user_id every time."
)


# The scope and id arguments, described once: an assistant reads these descriptions to fill them in.
USER_ID = Annotated[str | None, Field(description="whose memories: the same id every time for one user")]
AGENT_ID = Annotated[str | None, Field(description="the agent's own memories (optional)")]
RUN_ID = Annotated[str | None, Field(description="one conversation or session (optional)")]
MEMORY_ID = Annotated[str, Field(description="a memory's id, as add_memory, search_memories or list_memories "
                                             "returned it")]


class ChatMessage(BaseModel):
    role: str = Field(description="user, assistant or system")
    content: str = Field(description="what was said")
    name: str | None = Field(None, description="the speaker's name (optional)")


def _one_input(messages: str | list[ChatMessage] | None, text: str | None) -> str | list[dict[str, str]]:
    """Mem0's clients send ``messages``; earlier localmem tools took ``text``: accept either, not both."""
    if (messages is None) == (text is None):
        raise InvalidInputError("add_memory needs messages (a text or a list of {role, content}) or text, "
                                "not both and not neither")
    if text is not None:
        return text
    if isinstance(messages, str):
        return messages
    return [m.model_dump(exclude_none=True) for m in messages or []]


def build_mcp(memory: AsyncMemory, *, loopback: bool = True) -> FastMCP:
    # Off loopback, the server's API key guards the endpoint; DNS-rebinding protection (a browser
    # trick against localhost services) would otherwise refuse every non-localhost Host header.
    security = None if loopback else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server = FastMCP("localmem", instructions=INSTRUCTIONS, stateless_http=True, json_response=True,
                     transport_security=security, log_level="WARNING")

    @server.tool()
    async def add_memory(
            messages: Annotated[str | list[ChatMessage] | None, Field(
                description="what to remember, as Mem0 takes it: one text, or a list of {role, content} "
                            "messages (role: user, assistant or system)")] = None,
            text: Annotated[str | None, Field(description="one text to remember (instead of messages)")] = None,
            user_id: USER_ID = None, agent_id: AGENT_ID = None, run_id: RUN_ID = None,
            metadata: Annotated[dict[str, Any] | None, Field(
                description="JSON object stored with every memory created, e.g. {\"category\": \"health\"}")] = None,
            infer: Annotated[bool, Field(
                description="true: extract short facts with the local model; false: store the text as it is")] = True,
    ) -> dict[str, Any]:
        """Remember what the user said. Give messages (Mem0's shape) or text, and a user_id."""
        return await memory.add(_one_input(messages, text), user_id=user_id, agent_id=agent_id, run_id=run_id,
                                metadata=metadata, infer=infer)

    @server.tool()
    async def search_memories(
            query: Annotated[str, Field(description="what to look for, in plain words")],
            user_id: USER_ID = None, agent_id: AGENT_ID = None, run_id: RUN_ID = None,
            limit: Annotated[int, Field(description="at most this many memories")] = 5) -> dict[str, Any]:
        """Memories most similar to the query (score: higher is better)."""
        return await memory.search(query, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)

    @server.tool()
    async def list_memories(user_id: USER_ID = None, agent_id: AGENT_ID = None, run_id: RUN_ID = None,
                            limit: Annotated[int, Field(description="at most this many memories")] = 100,
                            ) -> dict[str, Any]:
        """Every memory of a user, agent or run, oldest first."""
        return await memory.get_all(user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)

    @server.tool()
    async def get_memory(memory_id: MEMORY_ID) -> dict[str, Any]:
        """One memory by id."""
        return await memory.get(memory_id)

    @server.tool()
    async def update_memory(memory_id: MEMORY_ID,
                            text: Annotated[str, Field(description="the memory's new text")]) -> dict[str, str]:
        """Replace a memory's text."""
        return await memory.update(memory_id, text)

    @server.tool()
    async def delete_memory(memory_id: MEMORY_ID) -> dict[str, str]:
        """Delete one memory (its history is kept)."""
        return await memory.delete(memory_id)

    @server.tool()
    async def memory_history(memory_id: MEMORY_ID) -> list[dict[str, Any]]:
        """How a memory changed, oldest first."""
        return await memory.history(memory_id)

    @server.tool()
    async def wait_for_extraction(
            timeout: Annotated[float, Field(
                description=f"seconds to wait, at most {MAX_WAIT_S:g} (0: just look)")] = 30.0,
    ) -> dict[str, Any]:
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
