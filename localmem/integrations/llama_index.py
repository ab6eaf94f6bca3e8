"""LlamaIndex: a memory block for ``llama_index.core.memory.Memory``.

``pip install -e '.[llamaindex]'`` (llama-index-core). Messages the short-term memory lets go are
added to localmem (facts extracted unless ``infer=False``); each turn, the memories most similar to
the latest message come back as a text block for the prompt.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import BaseMemoryBlock
except ImportError as exc:  # one line that says what to install
    from localmem.dist import extra_hint
    from localmem.errors import DependencyError

    raise DependencyError(f"localmem.integrations.llama_index needs llama-index-core: {extra_hint('llamaindex')}"
                          ) from exc


class LocalmemMemoryBlock(BaseMemoryBlock[str]):
    """``Memory.from_defaults(memory_blocks=[LocalmemMemoryBlock(memory=m, user_id="alice")])``."""

    name: str = "localmem"
    description: str | None = "Long-term memories about the user, stored locally"
    memory: Any
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    limit: int = 5
    infer: bool = True

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        query = next((m.content for m in reversed(messages or []) if m.content), None)
        if not query:
            return ""
        # Memory is synchronous (a model and a store); a worker thread keeps the event loop free.
        hits = (await asyncio.to_thread(self.memory.search, query, user_id=self.user_id, agent_id=self.agent_id,
                                        run_id=self.run_id, limit=self.limit))["results"]
        return "\n".join(f"- {hit['memory']}" for hit in hits)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        said = [{"role": _role(m), "content": m.content} for m in messages if m.content]
        if said:
            await asyncio.to_thread(self.memory.add, said, user_id=self.user_id, agent_id=self.agent_id,
                                    run_id=self.run_id, infer=self.infer)


def _role(message: ChatMessage) -> str:
    role = str(message.role.value)
    return role if role in ("user", "assistant", "system") else "tool"
